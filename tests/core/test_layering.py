"""Imports point one way: adapters -> bot <- nlp, matching, jobs (DESIGN, "Layout")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The composition root and the CLI wire the other packages in (lazily: see the --help test below).
WIRING = ("bot/app.py", "bot/cli/")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_never_imports_ml_platforms_or_outer_packages() -> None:
    forbidden = {
        "torch",
        "faiss",
        "transformers",
        "sentence_transformers",
        "peft",
        "slack_sdk",
        "slack_bolt",
        "wechaty_puppet_service",
        "nlp",
        "matching",
        "jobs",
        "adapters",
    }
    offenders = {}
    for path in (ROOT / "bot").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(WIRING) or "/migrations/" in rel:
            continue
        bad = imported_roots(path) & forbidden
        if bad:
            offenders[rel] = sorted(bad)
    assert offenders == {}


def test_adapters_never_import_nlp_or_matching() -> None:
    for path in (ROOT / "adapters").rglob("*.py"):
        assert not imported_roots(path) & {"nlp", "matching", "torch", "faiss"}, path


def test_cli_help_imports_no_model_code() -> None:
    code = (
        "import sys, bot.cli; print(','.join(m for m in ('torch','faiss','transformers','nlp','matching') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
