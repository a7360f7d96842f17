"""Database engine, sessions and schema upgrades (Alembic).

SQLite (the default, a file under the data directory) runs in WAL mode with a busy timeout so the bot,
a CLI import and a scheduler can share it. PostgreSQL works the same through ``DATABASE_URL``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

T = TypeVar("T")

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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
    """Apply Alembic migrations up to ``revision`` (idempotent; called on every start)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


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
