"""``communitybot index status|rebuild`` on a real IndexedMatcher (hashing embedder, no model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import bot.app
from bot.cli import app
from bot.community import get_or_create_community
from bot.db import create_db_engine, session_scope, upgrade_database
from bot.models import Resource
from bot.settings import Settings
from matching.embedder import HashingEmbedder
from matching.search import IndexedMatcher

runner = CliRunner()


def test_status_syncs_and_rebuild_reembeds_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedded: list[str] = []

    class Recording(HashingEmbedder):
        def embed_passages(self, texts: Any, *, progress: bool = False) -> Any:
            embedded.extend(texts)
            return super().embed_passages(texts, progress=progress)

    def load_matcher(settings: Settings, *, engine: Any) -> IndexedMatcher:
        return IndexedMatcher(engine=engine, data_dir=settings.data_dir, embedder=Recording())

    monkeypatch.setattr(bot.app, "load_matcher", load_matcher)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'communitybot.sqlite3'}")
    upgrade_database(engine)
    with session_scope(engine) as s:
        row = get_or_create_community(s, "default", settings=Settings(_env_file=None, data_dir=tmp_path))
        s.add_all([Resource(community_id=row.id, title=f"Guide {i}") for i in range(3)])
    engine.dispose()

    status = runner.invoke(app, ["index", "status", "--data-dir", str(tmp_path), "--json"])
    assert status.exit_code == 0, status.output
    payload = json.loads(status.stdout.strip().splitlines()[-1])
    assert payload["indexes"]["resource"] == {"items": 3, "approximate": False}
    assert payload["indexes"]["member"]["items"] == 0 and "seconds" not in payload
    assert len(embedded) == 3
    again = runner.invoke(app, ["index", "status", "--data-dir", str(tmp_path)])
    assert "resource: 3 items, exact" in again.stdout and len(embedded) == 3  # nothing re-embedded
    rebuilt = runner.invoke(app, ["index", "rebuild", "--data-dir", str(tmp_path), "--kind", "resource",
                                  "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout.strip().splitlines()[-1])["indexes"] == {
        "resource": {"items": 3, "approximate": False}}
    assert len(embedded) == 6  # all three again
    bad = runner.invoke(app, ["index", "rebuild", "--data-dir", str(tmp_path), "--kind", "people"])
    assert bad.exit_code == 2 and "unknown --kind people" in bad.output
