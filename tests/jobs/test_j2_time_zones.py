"""Case J2 of real_world_cases.md (time zones and DST) and the kinds it stands for: cron read as cron
defines it (0 and 7 are Sunday), in the community's zone whatever the host's, through both DST changes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from jobs.triggers import CronSchedule

LA = ZoneInfo("America/Los_Angeles")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def fires(
    schedule: CronSchedule, start: datetime, count: int, until: datetime | None = None
) -> list[datetime]:
    """The next ``count`` fire times from ``start`` as the scheduler asks for them (previous, now)."""
    out: list[datetime] = []
    previous = None
    now = start
    while len(out) < count:
        nxt = schedule.get_next_fire_time(previous, now)
        assert nxt is not None
        if until is not None and nxt > until:
            break
        out.append(nxt)
        previous = now = nxt
    return out


def test_j2a_a_daily_midnight_job_across_spring_forward() -> None:
    schedule = CronSchedule("0 0 * * *", "America/Los_Angeles")
    times = fires(schedule, datetime(2022, 3, 12, 23, 59, tzinfo=LA), 3)
    assert [t.isoformat() for t in times] == [
        "2022-03-13T00:00:00-08:00",  # PST
        "2022-03-14T00:00:00-07:00",  # PDT
        "2022-03-15T00:00:00-07:00",
    ]


def test_j2b_a_0130_job_fires_once_on_the_fall_back_night() -> None:
    night = fires(CronSchedule("30 1 * * *", LA), datetime(2022, 11, 5, 12, 0, tzinfo=LA), 10,
                  until=datetime(2022, 11, 7, 0, 0, tzinfo=LA))
    assert [t.isoformat() for t in night] == ["2022-11-06T01:30:00-07:00"]
    after = fires(CronSchedule("30 1 * * *", LA), datetime(2022, 11, 5, 12, 0, tzinfo=LA), 3)
    assert [t.isoformat() for t in after] == [
        "2022-11-06T01:30:00-07:00", "2022-11-07T01:30:00-08:00", "2022-11-08T01:30:00-08:00",
    ]


def test_j2c_a_tuesday_digest_in_shanghai_on_a_utc_host() -> None:
    schedule = CronSchedule("0 18 * * 2", "Asia/Shanghai")
    times = fires(schedule, datetime(2026, 11, 30, 0, 0, tzinfo=UTC), 3)
    assert [t.astimezone(SHANGHAI).strftime("%A %H:%M") for t in times] == ["Tuesday 18:00"] * 3
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2026-12-01T10:00:00+00:00", "2026-12-08T10:00:00+00:00", "2026-12-15T10:00:00+00:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "sun"])
def test_sunday_is_0_7_or_sun_as_in_cron(sunday: str) -> None:
    [first] = fires(CronSchedule(f"0 9 * * {sunday}", UTC), datetime(2026, 11, 30, tzinfo=UTC), 1)
    assert first == datetime(2026, 12, 6, 9, 0, tzinfo=UTC) and first.strftime("%A") == "Sunday"


def test_a_time_inside_the_spring_gap_fires_once_right_after_it() -> None:
    times = fires(CronSchedule("30 2 * * *", LA), datetime(2022, 3, 12, 12, 0, tzinfo=LA), 3)
    assert [t.isoformat() for t in times] == [
        "2022-03-13T03:00:00-07:00", "2022-03-14T02:30:00-07:00", "2022-03-15T02:30:00-07:00",
    ]


def test_last_fire_time_is_the_period_a_job_works_for() -> None:
    schedule = CronSchedule("0 18 * * 2", "Asia/Shanghai")
    assert schedule.last_fire_time(datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 18, 0, tzinfo=SHANGHAI)
    assert schedule.last_fire_time(datetime(2026, 12, 1, 9, 59, tzinfo=UTC)) == datetime(
        2026, 11, 24, 18, 0, tzinfo=SHANGHAI)


def test_the_trigger_survives_the_job_store_and_refuses_bad_cron() -> None:
    schedule = pickle.loads(pickle.dumps(CronSchedule("0 9 * * 1", "Asia/Shanghai")))
    assert (schedule.expression, str(schedule.timezone)) == ("0 9 * * 1", "Asia/Shanghai")
    with pytest.raises(ValueError, match="not a valid cron expression"):
        CronSchedule("61 25 * * *", UTC)
