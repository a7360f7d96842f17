"""The scheduled jobs: their names, what they do, how often the scheduler runs them, and their functions.

Every job is idempotent: it looks at the database as of ``now`` and queues the notifications that are due
under keys that name them once (:mod:`bot.notifications`), so running it twice, late, or in two processes
queues nothing twice. Time-of-day schedules (the weekly digest at the community's ``digest_cron`` in its
time zone) are therefore read by the job itself at each run
(:meth:`jobs.triggers.CronSchedule.last_fire_time`), and the scheduler only has to run it often enough.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from jobs.context import JobFunction


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job.

    Attributes:
        name: the job's name (``communitybot jobs run NAME``).
        summary: what it does, in a line.
        target: ``module:function`` of its :data:`jobs.context.JobFunction` (imported when first run).
        every: seconds between two runs by the scheduler.
    """

    name: str
    summary: str
    target: str
    every: int

    def function(self) -> JobFunction:
        """The job function (imports its module).

        Raises:
            ImportError / AttributeError: the target does not exist.
        """
        module, _, attribute = self.target.partition(":")
        function: JobFunction = getattr(importlib.import_module(module), attribute)
        return function


JOBS: tuple[JobSpec, ...] = (
    JobSpec("dispatch", "send queued announcements, reminders, digests and introductions that are due",
            "jobs.dispatch:run_dispatch", 15),
    JobSpec("reminders", "queue reminders to members who RSVP'd yes (24 h and 1 h before by default)",
            "jobs.reminders:run_reminders", 60),
    JobSpec("events", "after events end: 'people you should meet' among attendees (where enabled)",
            "jobs.reminders:run_event_followups", 300),
    JobSpec("digests", "the weekly digest per announcement channel and the opt-in personal digests",
            "jobs.digests:run_digests", 60),
    JobSpec("questions", "route unanswered questions to up to three members who may know",
            "jobs.questions:run_questions", 300),
    JobSpec("introductions", "propose double opt-in introductions (need <-> offer); check back a week on",
            "jobs.introductions:run_introductions", 3600),
    JobSpec("retention", "delete logged messages older than each community's message_log_days",
            "jobs.retention:run_retention", 3600),
)

BY_NAME: dict[str, JobSpec] = {job.name: job for job in JOBS}
