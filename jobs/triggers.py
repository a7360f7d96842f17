"""A cron trigger for APScheduler that reads cron as cron defines it, in a community's time zone, through DST.

APScheduler 3's own ``CronTrigger`` gets three things wrong that a community notices (case J2, measured
with APScheduler 3.11): ``from_crontab`` reads the day of week with 0 = Monday (cron: 0 and 7 are Sunday,
so ``0 18 * * 2`` would fire on Wednesdays); a daily 00:00 job across the spring-forward night skips a
day; and a 01:30 job on the fall-back night fires over and over. :class:`CronSchedule` takes the fields'
matching from ``croniter`` (cron's own semantics, 0/7 = Sunday) and adds the DST rules:

* a local time that happens twice (fall back) fires once, at its first occurrence;
* a local time that does not exist (spring forward) fires once, at the first instant after the gap
  (croniter's behaviour, as Vixie cron does).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from croniter import croniter


class CronSchedule(BaseTrigger):
    """Fire at the times of a five-field cron ``expression`` in the time zone ``timezone``.

    Args:
        expression: ``minute hour day-of-month month day-of-week`` (``0 18 * * 2``: Tuesdays 18:00).
        timezone: an IANA name or a ``tzinfo``.

    Raises:
        ValueError: the expression is not valid cron (the message is croniter's).
    """

    def __init__(self, expression: str, timezone: str | tzinfo) -> None:
        if not croniter.is_valid(expression):
            raise ValueError(f"not a valid cron expression: {expression!r}")
        self.expression = expression
        self.timezone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first fire time after ``previous_fire_time`` (when given) and not before ``now``, aware."""
        start = now if previous_fire_time is None else max(now, previous_fire_time)
        local_start = start.astimezone(self.timezone) - timedelta(microseconds=1)
        times = croniter(self.expression, local_start)
        previous_wall = (previous_fire_time.astimezone(self.timezone).replace(tzinfo=None)
                         if previous_fire_time is not None else None)
        for _ in range(1000):
            candidate: datetime = times.get_next(datetime)
            wall = candidate.replace(tzinfo=None)
            if previous_wall is not None and wall == previous_wall:
                continue  # the same local time again after falling back: it already fired
            if previous_fire_time is not None and candidate <= previous_fire_time:
                continue
            return candidate
        return None

    def last_fire_time(self, now: datetime) -> datetime:
        """The latest fire time at or before ``now`` (aware, in the schedule's time zone): the period a job
        that runs every minute is working for (``digest:<community>:<this time>``)."""
        times = croniter(self.expression, now.astimezone(self.timezone) + timedelta(microseconds=1))
        candidate: datetime = times.get_prev(datetime)
        return candidate

    def __getstate__(self) -> dict[str, object]:
        return {"version": 1, "expression": self.expression, "timezone": str(self.timezone)}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.expression = str(state["expression"])
        self.timezone = ZoneInfo(str(state["timezone"]))

    def __str__(self) -> str:
        return f"cron[{self.expression}, {self.timezone}]"

    def __repr__(self) -> str:
        return f"<CronSchedule {self.expression!r} {self.timezone}>"
