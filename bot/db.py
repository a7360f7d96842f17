"""Database engine, sessions and schema upgrades (Alembic).

SQLite (the default, a file under the data directory) runs in WAL mode with a busy timeout so the bot,
a CLI import and a scheduler can share it. PostgreSQL works the same through ``DATABASE_URL``.

Every process upgrades the schema when it starts (:func:`upgrade_database`); several processes starting at
once on an empty database take turns through a migration lock (:func:`migration_lock`).
"""

from __future__ import annotations

import logging
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

T = TypeVar("T")

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: The PostgreSQL advisory lock held while a process migrates: ``zlib.crc32(b"communitybot:migrations")``
#: (= 982537004), a fixed number so that every process of every version agrees on it, and distinct from
#: the scheduler's leader lock (:data:`jobs.leader.ADVISORY_KEY`, ``crc32(b"communitybot:scheduler")``).
#: Advisory locks are per database, not per schema: deployments sharing one database take turns.
MIGRATION_LOCK_KEY = zlib.crc32(b"communitybot:migrations")


def create_db_engine(url: str, *, busy_timeout_ms: int = 5000) -> Engine:
    """Create an engine for ``url``; for SQLite, create the parent folder and turn on WAL + busy timeout.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
        busy_timeout_ms: SQLite only: how long a writer waits for a lock, in milliseconds.
    """
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Any:
    """An Alembic ``Config`` pointing at ``bot/migrations`` and the given engine (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config(stdout=sys.stdout)  # Alembic's default is the stdout of the moment it was first imported
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (idempotent; called on every start).

    Safe when several processes start at once on the same (even empty) database: the upgrade runs under
    :func:`migration_lock`, so the first process migrates and the others wait, then find the schema at
    ``revision`` and do nothing. Without the lock two processes would both find no ``alembic_version``
    and both create the tables, and the slower one would fail ("relation/table already exists").
    """
    from alembic import command

    with migration_lock(engine):
        command.upgrade(alembic_config(engine), revision)


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's migration lock for the duration of the block (blocking until it is free).

    PostgreSQL: a session-level ``pg_advisory_lock(MIGRATION_LOCK_KEY)`` (:data:`MIGRATION_LOCK_KEY`) on a
    dedicated connection in autocommit, so the lock is neither tied to nor held open by a transaction, and
    the migrations themselves run on their own connection. It is released with ``pg_advisory_unlock``;
    if the process dies, PostgreSQL ends its session and frees the lock at once.

    SQLite: an exclusive ``filelock.FileLock`` on ``<database file>.migrate.lock`` next to the database
    (the operating system releases it if the process dies). An in-memory database belongs to one process
    and takes no lock. Other databases take no lock.
    """
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            if not got.scalar():
                log.info("another process is migrating the database; waiting for it to finish")
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                except sa.exc.DBAPIError as exc:  # the session is gone, and its lock with it
                    log.warning("unlocking the migration lock failed (%s); the closed session frees it", exc)
        return
    database = engine.url.database or ""
    if dialect != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        yield
        return
    path = Path(database + ".migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error. Objects stay usable after commit."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_or_insert(session: Session, find: Callable[[], T | None], insert: Callable[[], T]) -> T:
    """``find()``, or else ``insert()`` (which adds and flushes the new rows) — safe against a concurrent
    writer inserting the same unique row first (two first messages of one person handled at once, by bot
    threads or processes): the insert runs in a savepoint, and when the database refuses it as a duplicate
    the savepoint is rolled back and the other writer's row is returned.

    Raises:
        IntegrityError: the insert failed for another reason (``find()`` still finds nothing).
    """
    found = find()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            return insert()
    except IntegrityError:
        found = find()
        if found is None:
            raise
        return found
