"""The leader lock: one active scheduler per database, freed when its holder goes."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the simulated crash
def test_a_dead_job_thread_is_started_again_while_the_lock_is_held(tmp_path: Path) -> None:
    from bot.settings import Settings
    from jobs.context import JobContext
    from jobs.scheduler import SchedulerService

    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    from bot.db import upgrade_database

    upgrade_database(engine)
    ctx = JobContext(engine=engine, settings=Settings(_env_file=None, data_dir=tmp_path))  # type: ignore[call-arg]
    service = SchedulerService(ctx, poll=60, context_key="dead-thread")
    try:
        assert service.step() is True and service.active
        first = service._scheduler  # noqa: SLF001
        assert first is not None
        def locked() -> float:
            raise RuntimeError("database is locked")  # what killed it in a newcomer's run

        first._process_jobs = locked  # type: ignore[method-assign]  # noqa: SLF001
        first.wakeup()
        first._thread.join(5)  # type: ignore[union-attr]  # noqa: SLF001
        assert not service._running()  # noqa: SLF001
        assert service.step() is True
        assert service._running() and service._scheduler is not first  # noqa: SLF001
        assert {j["name"] for j in service.jobs()} >= {"dispatch", "reminders", "digests"}
    finally:
        service.stop()
        engine.dispose()
