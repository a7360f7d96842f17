"""Which process runs the scheduler: one lock per database, held by the active scheduler only.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept open for as long
as the process leads; if the process dies, PostgreSQL ends its session and the lock is free at once
(https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS). The connection is checked
on every :meth:`LeaderLock.still_held`, so a leader that lost its connection stops leading.

SQLite (one machine): an exclusive lock on a file next to the database (``filelock``); the operating system
releases it when the process dies.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock, Timeout
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

#: The advisory lock's key: a fixed 32-bit number derived from the product's name.
ADVISORY_KEY = zlib.crc32(b"communitybot:scheduler")


class LeaderLock:
    """Try to become (and stay) the one active scheduler of ``engine``'s database.

    Args:
        engine: the deployment's database.
        lock_path: the lock file for SQLite (default: the database file's path + ``.scheduler.lock``).
    """

    def __init__(self, engine: Engine, *, lock_path: Path | None = None) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._file: FileLock | None = None
        if engine.dialect.name == "sqlite":
            database = engine.url.database or ""
            default = Path(database + ".scheduler.lock") if database and database != ":memory:" else None
            path = lock_path or default
            if path is None:
                raise ValueError("an in-memory SQLite database has no lock file: give lock_path")
            self._file = FileLock(str(path), thread_local=False)  # taken by the poller, freed by stop()

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (as far as it knows; see :meth:`still_held`)."""
        if self._file is not None:
            return self._file.is_locked
        return self._connection is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; ``True`` when this process holds it afterwards. Never blocks."""
        if self.held:
            return True
        if self._file is not None:
            try:
                self._file.acquire(timeout=0)
            except Timeout:
                return False
            return True
        connection = self.engine.connect()
        try:
            got = bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                          {"key": ADVISORY_KEY}).scalar())
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def still_held(self) -> bool:
        """Check that the lock is still ours (PostgreSQL: the session is alive); drops it if not."""
        if self._file is not None:
            return self._file.is_locked
        if self._connection is None:
            return False
        try:
            self._connection.execute(sa.text("SELECT 1"))
            self._connection.commit()
            return True
        except Exception as exc:  # noqa: BLE001 - any failure means the session (and its lock) is gone
            log.warning("scheduler: lost the database session holding the leader lock (%s)", exc)
            self._drop_connection()
            return False

    def release(self) -> None:
        """Give the lock up (another process may take it at once)."""
        if self._file is not None:
            if self._file.is_locked:
                self._file.release(force=True)
            return
        if self._connection is not None:
            try:
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                self._connection.commit()
            except Exception as exc:  # noqa: BLE001 - closing the session releases it anyway
                log.info("scheduler: unlocking failed (%s); closing the session releases the lock", exc)
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            finally:
                self._connection = None
