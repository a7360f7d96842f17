"""The leader lock: one active scheduler per database, freed when its holder goes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import create_db_engine
from jobs.leader import LeaderLock


def test_sqlite_one_holder_at_a_time_and_the_next_takes_over(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    first, second = LeaderLock(engine), LeaderLock(engine)
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    assert first.still_held() and not second.held
    first.release()
    assert second.try_acquire() is True
    assert first.try_acquire() is False
    second.release()
    engine.dispose()


def test_postgres_advisory_lock_is_freed_when_the_session_dies(pg_engine: Engine) -> None:
    other = sa.create_engine(pg_engine.url, connect_args={"options": "-csearch_path=public"})
    first, second = LeaderLock(pg_engine), LeaderLock(other)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert first.still_held()
        # the holder's session ends as if its process died
        assert first._connection is not None  # noqa: SLF001
        with other.connect() as conn:
            pid = first._connection.execute(sa.text("SELECT pg_backend_pid()")).scalar()  # noqa: SLF001
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert first.still_held() is False
        assert second.try_acquire() is True
    finally:
        first.release()
        second.release()
        other.dispose()
