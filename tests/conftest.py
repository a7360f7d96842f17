"""Shared fixtures: a migrated database on each storage backend, settings pointing at it, shared-data path.

Storage-dependent tests run twice, on SQLite and on the machine's PostgreSQL (``TEST_POSTGRES_URL``, set by
``.ci/run``): every test that uses ``settings``, ``engine`` or ``database_url`` (directly or through another
fixture) is parametrized over the ``backend`` fixture, ids ``[sqlite]`` and ``[postgresql]``; the
PostgreSQL variant is skipped, with the reason, when ``TEST_POSTGRES_URL`` is unset.

- SQLite: a file under the test's data directory, copied from one migrated template per session.
- PostgreSQL: one schema per session (unique name), migrated to head once and dropped at the end; every
  test starts on emptied tables (``TRUNCATE ... RESTART IDENTITY CASCADE``). The URL names the schema in
  libpq's ``options`` (``-csearch_path=...``), so every engine the app creates from
  ``settings.resolved_database_url()`` (the App's, a worker's, a CLI's) lands in that schema too.

Tests that are about SQLite itself (its file under the data dir, WAL) or whose storage does not matter
(model training) stay on SQLite only: mark them ``@pytest.mark.sqlite_only`` (a module: ``pytestmark``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported anywhere (see bot/cli)
# Tests drive one member through many messages at a frozen clock: the per-member rate limit (20/min, burst 10)
# would silence them. It is off for the suite and on in the tests of the limit itself
# (tests/production/test_input_bounds.py), which set the product's defaults explicitly.
os.environ.setdefault("COMMUNITYBOT_RATE_LIMIT_PER_MINUTE", "0")

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import create_db_engine, upgrade_database
from bot.settings import Settings

SHARED_DATA = Path(
    os.environ.get("COMMUNITYBOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

BACKENDS = ("sqlite", "postgresql")
NO_POSTGRES = "TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
SQLITE_ONLY = "sqlite_only"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SQLITE_ONLY}: run on SQLite only (the test is about SQLite itself, or its storage does not "
        "matter); other tests using settings/engine/database_url run on SQLite and PostgreSQL",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that depends on ``backend`` once per backend, unless it is marked ``sqlite_only`` or
    brings its own PostgreSQL schema (``pg_engine``: its ``settings`` then stay on SQLite, as before)."""
    if "backend" not in metafunc.fixturenames or "pg_engine" in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker(SQLITE_ONLY):
        return
    metafunc.parametrize("backend", BACKENDS, indirect=True, scope="function")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without ``TEST_POSTGRES_URL``, skip the PostgreSQL variants by a mark (reported once per file)."""
    if postgres_url():
        return
    skip = pytest.mark.skip(reason=NO_POSTGRES)
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgresql":
            item.add_marker(skip)


def postgres_url() -> str | None:
    """``TEST_POSTGRES_URL`` or None."""
    return os.environ.get("TEST_POSTGRES_URL") or None


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql`` (the test's parameter; ``sqlite`` for tests marked ``sqlite_only``).
    Skips the PostgreSQL variant when ``TEST_POSTGRES_URL`` is unset."""
    name: str = getattr(request, "param", "sqlite")
    if name == "postgresql" and not postgres_url():
        pytest.skip(NO_POSTGRES)
    return name


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (Alembic runs once per session)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "communitybot.sqlite3"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the main file
    return path


@dataclass(frozen=True)
class PostgresSchema:
    """The session's schema: its URL (``search_path`` in libpq's options) and its tables."""

    url: str
    tables: tuple[str, ...]


@pytest.fixture(scope="session")
def _postgres_schema() -> Iterator[PostgresSchema]:
    """A schema of its own on ``TEST_POSTGRES_URL``, migrated to head once per session, dropped at the end."""
    url = postgres_url()
    if not url:
        pytest.skip(NO_POSTGRES)
    name = f"cb_suite_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    # libpq options reach every engine made from the URL; commits need not wait for the disk in tests
    options = f"-csearch_path={name} -csynchronous_commit=off"
    in_schema = sa.engine.make_url(url).update_query_dict({"options": options})
    try:
        engine = create_db_engine(in_schema.render_as_string(hide_password=False))
        upgrade_database(engine)
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version' ORDER BY tablename")).scalars().all()
        engine.dispose()
        yield PostgresSchema(url=in_schema.render_as_string(hide_password=False), tables=tuple(tables))
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _empty_postgres_schema(schema: PostgresSchema) -> None:
    """Empty every table of the schema (Alembic's version row stays) and restart the used id sequences.

    ``TRUNCATE`` costs about 0.35 s however little there is to empty, so only the tables that hold rows are
    emptied, with ``DELETE`` and triggers and foreign keys off (``session_replication_role = replica``,
    which needs a superuser: else everything is truncated)."""
    engine = sa.create_engine(schema.url, poolclass=sa.pool.NullPool)
    quoted = [f'"{name}"' for name in schema.tables]
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
            holding_rows = " UNION ALL ".join(
                f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in schema.tables)
            used = conn.execute(sa.text(holding_rows)).scalars().all() if schema.tables else []
            sequences = conn.execute(sa.text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() "
                "AND last_value IS NOT NULL")).scalars().all()
            try:
                with conn.begin_nested():
                    conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            except sa.exc.DBAPIError:  # not a superuser
                conn.execute(sa.text(f"TRUNCATE {', '.join(quoted)} RESTART IDENTITY CASCADE"))
                return
            for name in used:
                conn.execute(sa.text(f'DELETE FROM "{name}"'))
            for name in sequences:
                conn.execute(sa.text(f'ALTER SEQUENCE "{name}" RESTART'))
    finally:
        engine.dispose()


def fresh_database_url(request: pytest.FixtureRequest, backend: str) -> str | None:
    """What ``Settings.database_url`` should be on ``backend``: None on SQLite (the data directory's file),
    else the URL of the session's PostgreSQL schema, emptied now (skips when ``TEST_POSTGRES_URL`` is
    unset). For fixtures of any scope; a fixture wider than a test must not share the schema with tests
    that empty it meanwhile."""
    if backend == "sqlite":
        return None
    if not postgres_url():
        pytest.skip(NO_POSTGRES)
    schema: PostgresSchema = request.getfixturevalue("_postgres_schema")
    _empty_postgres_schema(schema)
    return schema.url


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """What ``Settings.database_url`` should be for the test's backend: None on SQLite (the data
    directory's file), else the session's PostgreSQL schema, emptied for this test."""
    return fresh_database_url(request, backend)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """Settings whose data directory and model cache live in ``tmp_path``, on the light English MiniLM
    (named explicitly; the default multilingual-e5-small would be converted into that empty cache and
    trained for minutes if a test loaded it), and whose database is the test's backend (SQLite: the data
    directory's file; PostgreSQL: see :func:`database_url`). Tests of the default model build their own
    settings."""
    return Settings(data_dir=tmp_path / "data", model_cache=tmp_path / "cache", database_url=database_url,
                    base_model="all-MiniLM-L6-v2")


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """:func:`settings` on SQLite only (the data directory's file), whatever the test's backend."""
    return Settings(data_dir=tmp_path / "data", model_cache=tmp_path / "cache", database_url=None,
                    base_model="all-MiniLM-L6-v2")


@pytest.fixture
def engine(settings: Settings, backend: str, _sqlite_template: Path) -> Iterator[Engine]:
    """A migrated, empty database at ``settings.resolved_database_url()`` (SQLite: the data directory's
    file, a copy of the session's template; PostgreSQL: the session's schema, emptied)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        shutil.copyfile(_sqlite_template, settings.data_dir / "communitybot.sqlite3")
    eng = create_db_engine(settings.resolved_database_url())
    yield eng
    eng.dispose()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is absent (it is never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA} (set COMMUNITYBOT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh, empty schema on the machine's PostgreSQL (``TEST_POSTGRES_URL``), dropped afterwards (for
    tests of migrations and of several engines on one server)."""
    url = postgres_url()
    if not url:
        pytest.skip(NO_POSTGRES)
    schema = f"cb_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
