"""``communitybot backup`` and ``communitybot restore``, end to end, on SQLite and on PostgreSQL: the
restore procedure of docs/deploy.md ("Restoring").

A community (the shipped sample, a member who asked the bot something, an RSVP, a model registry) is
backed up with the CLI, everything is wiped (the data directory deleted; on PostgreSQL the schema
dropped too), and the CLI restores it: every row of every table comes back identical, the model registry
byte for byte, and the bot gives the same answer to the same question. The matcher is the real one
(MiniLM, loaded once for the module); only the intent classifier is a fake (a real one would be trained or
converted for minutes, and the registry's files are compared byte for byte instead).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select
from typer.testing import CliRunner

import bot.app
from adapters.console import ConsoleAdapter
from bot.app import App, build_app
from bot.cli import app as cli
from bot.community import get_or_create_community
from bot.db import MIGRATIONS_DIR, session_scope
from bot.messages import HandledMessage
from bot.models import Event, Member, Rsvp, utcnow
from bot.sample import load_sample_community
from bot.settings import Settings
from matching.embedder import SentenceTransformerEmbedder
from nlp.seed import SHIPPED_MODEL_DIR
from tests.core.fakes import FakeClassifier

QUESTION = "who can help with an angel round?"
RULES = [("angel", "find_member", 0.95)]


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    """MiniLM, loaded once for the module (every app of the tests shares it)."""
    return SentenceTransformerEmbedder.from_base_model("all-MiniLM-L6-v2")


@dataclass
class Deployment:
    """A data directory and a database (SQLite under it, or a PostgreSQL schema of its own)."""

    settings: Settings
    env: dict[str, str | None]
    schema: str | None = None
    admin_url: str | None = None

    def wipe(self) -> None:
        """Lose everything: the data directory, and on PostgreSQL the schema."""
        shutil.rmtree(self.settings.data_dir)
        if self.schema is not None:
            admin = sa.create_engine(self.admin_url or "")
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path, embedder: SentenceTransformerEmbedder,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    monkeypatch.setattr(bot.app, "load_classifier", lambda settings, **kw: FakeClassifier(list(RULES)))
    monkeypatch.setattr(SentenceTransformerEmbedder, "from_base_model",
                        classmethod(lambda cls, name, **kw: embedder))
    common: dict[str, Any] = {"data_dir": tmp_path / "data", "model_cache": tmp_path / "cache",
                              "base_model": "all-MiniLM-L6-v2"}
    if request.param == "sqlite":
        yield Deployment(settings=Settings(database_url=None, **common),
                         env={"DATABASE_URL": None, "COMMUNITYBOT_DATABASE_URL": None})
        return
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip("TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH (package postgresql-client)")
    schema = f"cb_backup_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    in_schema = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    schema_url = in_schema.render_as_string(hide_password=False)
    try:
        yield Deployment(settings=Settings(database_url=schema_url, **common),
                         env={"DATABASE_URL": schema_url, "COMMUNITYBOT_DATABASE_URL": None},
                         schema=schema, admin_url=url)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def communitybot(deployment: Deployment, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process with the deployment's environment: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(deployment.settings.data_dir)],
                                env=deployment.env)
    return result.exit_code, result.stdout, result.stderr


def open_app(deployment: Deployment) -> tuple[App, ConsoleAdapter]:
    app = build_app(deployment.settings, progress=False)
    return app, ConsoleAdapter(handle=app.handle, community="default")


def rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the models, in primary-key order."""
    out = {}
    with engine.connect() as conn:
        for name, table in sorted(SQLModel.metadata.tables.items()):
            order = list(table.primary_key.columns) or list(table.columns)
            out[name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
    return out


def tree(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def answer(console: ConsoleAdapter) -> tuple[str, list[tuple[str, int, float]]]:
    result: HandledMessage = console.run_once(QUESTION)
    assert not result.failed, result.text
    return result.text, [(m.kind, m.id, round(m.score, 5)) for m in result.matches]


def test_backup_wipe_restore_gives_back_every_row_the_models_and_the_same_answer(
        deployment: Deployment, tmp_path: Path) -> None:
    settings = deployment.settings
    app, console = open_app(deployment)
    with session_scope(app.engine) as session:
        community = get_or_create_community(session, "default", settings=settings)
        load_sample_community(session, community=community, tz=UTC, now=utcnow())
    registry = settings.data_dir / "models" / "intent"
    shutil.copytree(SHIPPED_MODEL_DIR, registry / "v0001")
    (registry / "CURRENT").write_text("v0001\n", encoding="utf-8")
    console.run_once("hello")  # the asker becomes a member (and is welcomed)
    with session_scope(app.engine) as session:  # ... and goes to the first event
        member = session.exec(select(Member).order_by(col(Member.id).desc())).first()
        event = session.exec(select(Event).order_by(col(Event.id))).first()
        assert member is not None and event is not None and member.id and event.id
        session.add(Rsvp(event_id=event.id, member_id=member.id))
    before_answer = answer(console)
    assert before_answer[1] and "Maya Lindqvist" in before_answer[0]
    before_rows = rows(app.engine)
    before_models = tree(settings.data_dir / "models")
    app.engine.dispose()

    backup = tmp_path / "backups" / "nightly"
    code, out, err = communitybot(deployment, "backup", "--to", str(backup), "--json")
    assert code == 0, err
    manifest = json.loads(out.strip().splitlines()[-1])["manifest"]
    assert manifest == json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    db = manifest["database"]
    assert db["kind"] == ("sqlite" if deployment.schema is None else "postgresql")
    assert db["revision"] == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert db["tables"]["member"] == len(before_rows["member"]) == 25
    assert db["tables"]["rsvp"] == 1
    assert {f["path"] for f in manifest["files"]} == {db["file"]} | {f"models/{p}" for p in before_models}

    deployment.wipe()
    assert not settings.data_dir.exists()

    code, out, err = communitybot(deployment, "restore", "--from", str(backup), "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["revision"] == db["revision"] and report["tables"] == db["tables"]

    code, out, err = communitybot(deployment, "restore", "--from", str(backup))
    assert code == 1 and "already holds data" in err and "--force" in err  # never over data by accident

    app, console = open_app(deployment)
    try:
        assert rows(app.engine) == before_rows
        assert tree(settings.data_dir / "models") == before_models
        assert answer(console) == before_answer  # the index is rebuilt from the restored database
    finally:
        app.engine.dispose()


def test_restore_refuses_a_damaged_unfinished_or_newer_backup(tmp_path: Path) -> None:
    """Checked before anything is touched: the checksums, the manifest, the schema revision."""
    from bot.db import create_db_engine, upgrade_database

    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    deployment = Deployment(settings=settings, env={"DATABASE_URL": None, "COMMUNITYBOT_DATABASE_URL": None})
    settings.data_dir.mkdir()
    engine = create_db_engine(settings.resolved_database_url())
    upgrade_database(engine)
    engine.dispose()
    backup = tmp_path / "backup"
    assert communitybot(deployment, "backup", "--to", str(backup))[0] == 0
    assert communitybot(deployment, "backup", "--to", str(backup))[2].startswith("Error: ")  # not over one

    manifest_path = backup / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    newer = {**manifest, "database": {**manifest["database"], "revision": "9999"}}
    manifest_path.write_text(json.dumps(newer), encoding="utf-8")
    code, _, err = communitybot(deployment, "restore", "--from", str(backup), "--force")
    assert code == 1 and "revision 9999 is unknown" in err and "newer version" in err

    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with open(backup / "database.sqlite3", "r+b") as fh:  # one flipped byte
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    code, _, err = communitybot(deployment, "restore", "--from", str(backup), "--force")
    assert code == 1 and "damaged: database.sqlite3" in err and "Use another backup" in err

    manifest_path.unlink()
    code, _, err = communitybot(deployment, "restore", "--from", str(backup), "--force")
    assert code == 1 and "has no manifest.json" in err and "did not finish" in err
