"""``communitybot nlp train|eval|predict`` on the shipped MiniLM (small real trainings)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.nlp import nlp_app
from nlp.evaluation import METRIC_KEYS
from nlp.registry import IntentModelRegistry
from nlp.seed import load_seed_utterances

pytestmark = pytest.mark.real_model

runner = CliRunner()
LABELS = ("greeting", "thanks", "find_event")
ROOT = Path(__file__).resolve().parents[2]
BAD_LINES = ['{"text": "hello", "label": ', '["hi", "greeting"]', '{"text": "yo"}',
             '{"text": " ", "label": "x"}']


def last_json(output: str) -> dict[str, object]:
    payload: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return payload


def _write(path: Path, rows: list[tuple[str, str]], bad: list[str] | None = None) -> Path:
    lines = [json.dumps({"text": t, "label": label, "source": "seed"}, ensure_ascii=False)
             for t, label in rows]
    if bad:  # bad lines become lines 3, 5, 7, 9; a blank line at the end is ignored silently
        for i, line in enumerate(bad):
            lines.insert(2 + 2 * i, line)
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def _seeds(labels: tuple[str, ...], start: int, stop: int) -> list[tuple[str, str]]:
    rows = load_seed_utterances(languages=("en",))
    return [pair for label in labels for pair in [r for r in rows if r[1] == label][start:stop]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``(model dir, test file, stderr of the run)``: a CLI training with four bad lines."""
    work = tmp_path_factory.mktemp("cli")
    data = _write(work / "train.jsonl", _seeds(LABELS, 0, 10), BAD_LINES)
    test = _write(work / "test.jsonl", [*_seeds(LABELS, 10, 16), ("what is the capital of peru", "oos")])
    out = work / "model"
    result = runner.invoke(nlp_app, ["train", "--data", str(data), "--out", str(out), "--epochs", "3",
                                     "--seed", "13", "--base-model", "all-MiniLM-L6-v2"])
    assert result.exit_code == 0, result.output
    assert "Saved the intent model to" in result.stdout and "val accuracy" in result.stdout
    return out, test, result.stderr


def test_train_reports_bad_lines_with_numbers_and_skips_them(trained: tuple[Path, Path, str]) -> None:
    out, _, stderr = trained
    assert f"{out.parent / 'train.jsonl'} line 3: not valid JSON" in stderr
    assert "line 5: not a JSON object" in stderr
    assert 'line 7: "label" missing' in stderr and 'line 9: "text" missing' in stderr
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["example_counts"]["train"] + meta["example_counts"]["val"] == 30
    assert json.loads((out / "labels.json").read_text(encoding="utf-8")) == sorted(LABELS)
    assert meta["oos_threshold"] is None


def test_eval_json_prints_exactly_the_eight_metrics(trained: tuple[Path, Path, str]) -> None:
    out, test, _ = trained
    result = runner.invoke(nlp_app, ["eval", "--model", str(out), "--data", str(test), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.stdout)
    assert tuple(metrics) == METRIC_KEYS
    # 18 in-scope rows and one "oos" row the model has no class for
    assert metrics["oos_recall"] == 0.0 and metrics["oos_precision"] is None
    assert isinstance(metrics["in_scope_accuracy"], float) and metrics["in_scope_accuracy"] >= 16 / 18
    assert metrics["accuracy"] == pytest.approx(metrics["in_scope_accuracy"] * 18 / 19)
    assert isinstance(metrics["latency_ms_p50"], float) and metrics["latency_ms_p50"] > 0

    human = runner.invoke(nlp_app, ["eval", "--model", str(out), "--data", str(test)])
    assert human.exit_code == 0, human.output
    assert "19 examples (1 labelled 'oos')" in human.stdout
    assert [line.split()[0] for line in human.stdout.strip().splitlines()[-8:]] == list(METRIC_KEYS)


def test_predict_json_and_text(trained: tuple[Path, Path, str]) -> None:
    out, _, _ = trained
    result = runner.invoke(nlp_app, ["predict", "--model", str(out), "thanks a million!", "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert set(payload) == {"intent", "confidence", "top3"}
    assert payload["intent"] == "thanks"
    top3 = payload["top3"]
    assert isinstance(top3, list) and [row["intent"] for row in top3][0] == "thanks" and len(top3) == 3
    assert sum(row["confidence"] for row in top3) == pytest.approx(1.0, abs=1e-5)  # 3 labels: all of them
    text = runner.invoke(nlp_app, ["predict", "--model", str(out), "any meetups next week?"])
    assert text.exit_code == 0 and text.stdout.startswith("find_event  (confidence ")
    assert len(text.stdout.strip().splitlines()) == 4


def test_model_may_be_a_registry_folder_with_current(trained: tuple[Path, Path, str], tmp_path: Path) -> None:
    out, _, _ = trained
    registry = IntentModelRegistry(tmp_path / "intent")
    registry.register(trained_dir=shutil.copytree(out, tmp_path / "copy"))
    result = runner.invoke(nlp_app, ["predict", "--model", str(registry.root), "hello all", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["intent"] == "greeting"


def test_retraining_into_the_same_out_replaces_the_model(trained: tuple[Path, Path, str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    shutil.copytree(trained[0], out)
    monkeypatch.setenv("COMMUNITYBOT_BASE_MODEL", "minilm")  # the default comes from the settings
    labels = ("rsvp", "help")
    data = _write(tmp_path / "d.jsonl", _seeds(labels, 0, 6))
    val = _write(tmp_path / "v.jsonl", _seeds(labels, 6, 8))
    result = runner.invoke(nlp_app, ["train", "--data", str(data), "--val", str(val), "--out", str(out),
                                     "--epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["path"] == str(out.resolve()) and payload["labels"] == ["help", "rsvp"]
    assert payload["skipped_lines"] == 0
    metrics = payload["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["train_examples"] == 12 and metrics["val_examples"] == 4
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["base_model"] == "minilm" and meta["labels"] == ["help", "rsvp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "model", "v.jsonl"]


def test_refusals(tmp_path: Path) -> None:
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "important.txt").write_text("do not delete")
    data = _write(tmp_path / "d.jsonl", _seeds(("rsvp", "help"), 0, 3))
    result = runner.invoke(nlp_app, ["train", "--data", str(data), "--out", str(keep)])
    assert result.exit_code == 2 and "not an intent model; refusing to replace it" in result.stderr
    assert (keep / "important.txt").read_text() == "do not delete"

    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("\n".join(BAD_LINES) + "\n", encoding="utf-8")
    result = runner.invoke(nlp_app, ["train", "--data", str(only_bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "has no usable" in result.stderr
    assert "bad.jsonl line 4:" in result.stderr

    result = runner.invoke(nlp_app, ["eval", "--model", str(tmp_path / "m"), "--data",
                                     str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "Cannot read" in result.stderr
    result = runner.invoke(nlp_app, ["predict", "--model", str(tmp_path / "nowhere"), "hi"])
    assert result.exit_code == 1 and "No intent model at" in result.stderr


def test_help_does_not_import_torch() -> None:
    script = ("import sys\nfrom typer.testing import CliRunner\nfrom bot.cli.nlp import nlp_app\n"
              "for cmd in ('train', 'eval', 'predict'):\n"
              "    assert CliRunner().invoke(nlp_app, [cmd, '--help']).exit_code == 0\n"
              "print(sorted(m for m in ('torch', 'transformers', 'peft', 'sklearn') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
