"""The scheduler: APScheduler 3 with its job store in our database, active in one process at a time.

Every process that runs the bot starts a :class:`SchedulerService`; it polls the leader lock
(:class:`jobs.leader.LeaderLock`) every ``poll`` seconds and, while it holds it, runs an APScheduler
``BackgroundScheduler`` whose jobs (:data:`jobs.registry.JOBS`, on intervals) live in the table
``apscheduler_jobs`` of the deployment's database (``SQLAlchemyJobStore``), so their next run times survive
restarts. The other processes stand by; when the active one dies its lock is freed (PostgreSQL ends its
session; the OS its file lock) and the next poll of another process takes over.

Job options: ``coalesce`` (runs missed while the process was down collapse into one), ``max_instances=1``
and a misfire grace of ``misfire_grace`` seconds. Exactly-once delivery does not rest on them: every job
queues notifications under unique keys and the dispatcher sends each at most once, marking the ones whose
grace window passed as missed (:mod:`jobs.dispatch`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from jobs.context import JobContext
from jobs.leader import LeaderLock
from jobs.registry import BY_NAME, JOBS, JobSpec

log = logging.getLogger(__name__)

#: The table of APScheduler's job store in the deployment's database.
JOBSTORE_TABLE = "apscheduler_jobs"

_contexts: dict[str, JobContext] = {}
_contexts_lock = threading.Lock()


def run_job(name: str, context_key: str = "default") -> str:
    """Run the job ``name`` now with the registered context; what the scheduler calls (its job store keeps
    this function's import path and the job's name, never the context).

    Returns the job's summary line ("" when it failed: the traceback is logged; a failing job never stops
    the scheduler).

    Raises:
        KeyError: unknown job name, or no context registered under ``context_key``.
    """
    with _contexts_lock:
        ctx = _contexts[context_key]
    return run_now(BY_NAME[name], ctx)


def run_now(job: JobSpec, ctx: JobContext) -> str:
    """Run ``job`` once for ``ctx.clock()``; logs its summary, or its traceback when it fails; counts the
    run (``job_runs_total``, :mod:`bot.observability`)."""
    from bot.observability import count_job_run

    try:
        summary = job.function()(ctx, ctx.clock())
    except Exception:
        log.exception("job %s failed", job.name)
        count_job_run(job.name, ok=False)
        return ""
    count_job_run(job.name, ok=True)
    log.info("job %s: %s", job.name, summary)
    return summary


class SchedulerService:
    """Runs the scheduled jobs in this process while it is the active scheduler of the database.

    Args:
        ctx: the jobs' context (its engine is where the lock and the job store live).
        poll: seconds between two tries of the leader lock (and checks that it is still held).
        every: per-job run intervals overriding :attr:`jobs.registry.JobSpec.every` (tests use short ones).
        misfire_grace: seconds a job run may start late and still run.
        lock: the leader lock (default: one on ``ctx.engine``).
        context_key: the name this context is registered under for :func:`run_job` (one per process
            normally; tests running two services in one process give two).
    """

    def __init__(
        self,
        ctx: JobContext,
        *,
        poll: float = 10.0,
        every: dict[str, float] | None = None,
        misfire_grace: int = 300,
        lock: LeaderLock | None = None,
        context_key: str = "default",
    ) -> None:
        self.ctx = ctx
        self.poll = poll
        self.every = every or {}
        self.misfire_grace = misfire_grace
        self.lock = lock or LeaderLock(ctx.engine)
        self.context_key = context_key
        self._scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        with _contexts_lock:
            _contexts[context_key] = ctx

    @property
    def active(self) -> bool:
        """Whether this process runs the jobs now."""
        with self._state_lock:
            return self._scheduler is not None

    def start(self) -> None:
        """Start polling for the lock in a daemon thread (returns at once)."""
        self._thread = threading.Thread(target=self._loop, name="scheduler-leader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the standby loop
                log.exception("scheduler: leader check failed; trying again in %.0f s", self.poll)
            self._stop.wait(self.poll)

    def step(self) -> bool:
        """One poll: take the lock if free (and start the jobs), or check it is still held (and stop the
        jobs if not). Returns whether this process is active afterwards."""
        if self.active:
            if not self.lock.still_held():
                log.warning("scheduler: this process lost the leader lock; stopping its jobs")
                self._shutdown()
                return False
            if not self._running():
                # APScheduler's own thread died (e.g. "database is locked" while updating its job store):
                # start it again rather than hold the lock with nothing running
                log.error("scheduler: the job thread stopped unexpectedly; starting it again")
                self._shutdown()
                self._begin()
            return True
        if not self.lock.try_acquire():
            return False
        try:
            self._begin()
        except Exception:
            self.lock.release()
            raise
        return True

    def _begin(self) -> None:
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.ctx.engine, tablename=JOBSTORE_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": self.misfire_grace},
            timezone="UTC",
        )
        for job in JOBS:
            seconds = self.every.get(job.name, job.every)
            scheduler.add_job(
                run_job,
                trigger=IntervalTrigger(seconds=seconds),
                args=[job.name, self.context_key],
                id=job.name,
                name=job.summary,
                replace_existing=True,
            )
        scheduler.start()
        with self._state_lock:
            self._scheduler = scheduler
        log.warning("scheduler: this process is now the active scheduler (%d jobs)", len(JOBS))

    def _running(self) -> bool:
        """Whether the APScheduler of this process runs and its thread is alive."""
        with self._state_lock:
            scheduler = self._scheduler
        thread = getattr(scheduler, "_thread", None)
        return scheduler is not None and scheduler.running and (thread is None or thread.is_alive())

    def jobs(self) -> list[dict[str, Any]]:
        """The jobs as the active scheduler has them: ``{"name", "next_run_time"}`` (``[]`` on standby)."""
        with self._state_lock:
            scheduler = self._scheduler
        if scheduler is None:
            return []
        return [{"name": j.id, "next_run_time": j.next_run_time} for j in scheduler.get_jobs()]

    def _shutdown(self) -> None:
        with self._state_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            try:
                scheduler.shutdown(wait=False)
            except Exception:  # noqa: BLE001 - a dead scheduler may refuse; it is dropped either way
                log.exception("scheduler: shutting the job thread down failed")

    def stop(self) -> None:
        """Stop the jobs (waiting for running ones), release the lock and stop polling."""
        self._stop.set()
        with self._state_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        self.lock.release()
        if self._thread is not None:
            self._thread.join(timeout=self.poll + 5)
        with _contexts_lock:
            _contexts.pop(self.context_key, None)
