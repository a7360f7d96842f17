"""Migrations on SQLite and PostgreSQL: an empty database upgrades to a schema identical to the models',
every earlier revision upgrades to head keeping its rows, and processes starting together on one empty
database take turns (:func:`bot.db.migration_lock`).

"Identical" is :func:`alembic.autogenerate.compare_metadata` between the migrated database and
``SQLModel.metadata``, with types and server defaults compared, and one kind of difference ignored (see
:func:`schema_differences`). Revisions are discovered from the script directory: a new migration is
covered without editing this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import bot.models  # noqa: F401  (registers every table on SQLModel.metadata)
from bot.db import MIGRATIONS_DIR, create_db_engine, upgrade_database
from bot.models import Community, Event, Member, MessageLog

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ScriptDirectory(str(MIGRATIONS_DIR))
HEAD = SCRIPTS.get_current_head()
REVISIONS = [script.revision for script in SCRIPTS.walk_revisions()][::-1]
"""Every revision, oldest first (``0001`` ... head)."""
EARLIER = REVISIONS[:-1]
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_the_script_directory_is_one_line_of_revisions() -> None:
    assert HEAD is not None and REVISIONS[0] == "0001" and REVISIONS[-1] == HEAD
    assert len(SCRIPTS.get_heads()) == 1, "two heads: merge them before release"


# --- helpers ----------------------------------------------------------------------------------------------


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models, minus what is ignorable.

    Ignored: ``modify_default`` where the *models* have no server default and the database has one. Those
    defaults are backfills: a migration that adds a NOT NULL column to a table that may hold rows must give
    existing rows a value (``server_default=false()`` / ``''`` / ``'0'``, see 0002, 0003, 0006, 0007); the
    application always writes the column itself (model defaults), so the leftover database default changes
    nothing it does. Any other difference (a table, column, index, unique constraint, foreign key, type or
    nullability, or a server default the models declare) fails the test.
    """
    with engine.connect() as conn:
        options = {"compare_type": True, "compare_server_default": True}
        context = MigrationContext.configure(conn, opts=options)
        diffs = compare_metadata(context, SQLModel.metadata)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    return [d for d in flat if not (d[0] == "modify_default" and d[-1] is None)]


def current_revision(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _value_for(column: sa.Column[Any], dialect: str) -> Any:
    """A plausible value for a NOT NULL column without a default, by its reflected type."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 1
    if isinstance(kind, sa.DateTime):
        return T0.replace(tzinfo=None) if dialect == "sqlite" else T0
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.String):
        return "x"
    raise AssertionError(f"no sample value for {column.table.name}.{column.name} ({kind!r}): add one here")


def insert_row(conn: sa.Connection, table: str, **given: Any) -> int:
    """Insert a row into ``table`` as the schema *at the current revision* has it: ``given`` values, and a
    plausible value for every other NOT NULL column without a default (so the same code works on every
    revision, including ones added after this test was written). Returns the new id."""
    dialect = conn.dialect.name
    reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
    values = {k: (v.replace(tzinfo=None) if isinstance(v, datetime) and dialect == "sqlite" else v)
              for k, v in given.items() if k in reflected.columns}
    for column in reflected.columns:
        optional = column.primary_key or column.nullable or column.server_default is not None
        if column.name not in values and not optional:
            values[column.name] = _value_for(column, dialect)
    return int(conn.execute(reflected.insert().values(values).returning(reflected.c.id)).scalar_one())


# --- one fresh, empty database per test, on each backend ----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema (``pg_engine``; skipped with the
    reason when ``TEST_POSTGRES_URL`` is unset)."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_engine")
        return
    engine = create_db_engine(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    yield engine
    engine.dispose()


# --- (a) an empty database -------------------------------------------------------------------------------


def test_an_empty_database_upgrades_to_exactly_the_models_schema(empty_db: Engine) -> None:
    upgrade_database(empty_db)
    assert current_revision(empty_db) == [HEAD]
    assert table_names(empty_db) == set(SQLModel.metadata.tables) | {"alembic_version"}
    assert schema_differences(empty_db) == []
    upgrade_database(empty_db)  # every start upgrades: a second run changes nothing
    assert current_revision(empty_db) == [HEAD]


# --- (b) every earlier revision -----------------------------------------------------------------------------


@pytest.mark.parametrize("start", EARLIER)
def test_every_earlier_revision_upgrades_to_head_keeping_its_rows(empty_db: Engine, start: str) -> None:
    upgrade_database(empty_db, start)
    assert current_revision(empty_db) == [start]
    with empty_db.begin() as conn:  # written as that revision's code would: only the columns it has
        community_id = insert_row(conn, "community", name="founders", settings={"timezone": "Asia/Shanghai"},
                                  created_at=T0)
        member_id = insert_row(conn, "member", community_id=community_id, display_name="陈晓峰",
                               skills="supply chain, 深圳工厂", offers="factory introductions",
                               consent_suggest=True, created_at=T0, updated_at=T0)
        event_id = insert_row(conn, "event", community_id=community_id, title="Spring Meetup",
                              starts_at=T0, created_at=T0, updated_at=T0)
        log_id = insert_row(conn, "messagelog", community_id=community_id, platform="slack",
                            conversation="C1", sender="U1", text="who can help with an angel round?",
                            platform_key="slack:C1:1", created_at=T0)

    upgrade_database(empty_db)

    assert current_revision(empty_db) == [HEAD]
    assert schema_differences(empty_db) == []
    with Session(empty_db) as session:  # the head models read what the old schema stored
        community = session.get(Community, community_id)
        member = session.get(Member, member_id)
        event = session.get(Event, event_id)
        log = session.get(MessageLog, log_id)
        assert community is not None and member is not None and event is not None and log is not None
        assert (community.name, community.settings, community.created_at) == (
            "founders", {"timezone": "Asia/Shanghai"}, T0)
        assert (member.community_id, member.display_name, member.skills, member.offers) == (
            community_id, "陈晓峰", "supply chain, 深圳工厂", "factory introductions")
        assert member.consent_suggest is True and member.consent_questions is False  # added later, backfilled
        assert (event.title, event.starts_at, event.all_day) == ("Spring Meetup", T0, False)
        assert (log.text, log.platform_key) == ("who can help with an angel round?", "slack:C1:1")


# --- (c) concurrent first start -----------------------------------------------------------------------------

UPGRADER = """
import sys
import sqlalchemy as sa
from bot.db import create_db_engine, upgrade_database

url, schema = sys.argv[1], sys.argv[2]
if schema:
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
else:
    engine = create_db_engine(url)
print("ready", flush=True)
sys.stdin.readline()  # the starting gun: every process is imported and waiting
upgrade_database(engine)
print("done", flush=True)
"""


def start_together(n: int, *, url: str, schema: str) -> list[tuple[int, str]]:
    """Start ``n`` processes that each upgrade ``url`` (``schema``: PostgreSQL search_path), release them
    at the same instant once all are ready, and return their (exit code, output)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": "PASSIVE"}
    procs = [subprocess.Popen([sys.executable, "-c", UPGRADER, url, schema], cwd=REPO, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(n)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", line + proc.stdout.read()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return [(proc.wait(timeout=60), proc.stdout.read() if proc.stdout else "") for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str, str]]:
    """(engine, url, schema) of an empty database that subprocesses can open too."""
    if request.param == "postgresql":
        engine: Engine = request.getfixturevalue("pg_engine")
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        yield engine, os.environ["TEST_POSTGRES_URL"], schema
        return
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    engine = create_db_engine(url)
    yield engine, url, ""
    engine.dispose()


def test_processes_starting_together_on_an_empty_database_all_come_up(
        shared_empty_db: tuple[Engine, str, str]) -> None:
    engine, url, schema = shared_empty_db
    results = start_together(3, url=url, schema=schema)
    assert [code for code, _ in results] == [0, 0, 0], "\n---\n".join(out for _, out in results)
    assert current_revision(engine) == [HEAD]  # one version row, at head
    assert table_names(engine) == set(SQLModel.metadata.tables) | {"alembic_version"}
    assert schema_differences(engine) == []
    if engine.dialect.name == "postgresql":  # the lock was given back: nobody holds it any more
        from bot.db import MIGRATION_LOCK_KEY

        with engine.connect() as conn:
            held = conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                        "AND objid = :key AND granted"),
                                {"key": MIGRATION_LOCK_KEY}).scalar_one()
        assert held == 0
