"""Event questions: topic or none, and the time window they name, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.event_query import event_topic, event_window

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("what events are coming up?", ""),
        ("What's on this weekend?", ""),
        ("any conferences in December?", ""),
        ("下周有什么活动？", ""),
        ("下周的活动几点开始？", ""),
        ("十二月有什么大会", ""),
        ("12月20日的活动", ""),
        ("下周五晚上7点有什么活动", ""),
        ("any AI meetups next week?", "ai"),
        ("Any hardware events?", "hardware"),
        ("有没有关于融资的活动", "融资"),
        ("周六下午有AI活动吗", "ai"),
    ],
)
def test_event_topic(text: str, topic: str) -> None:
    assert event_topic(text) == topic


def test_dates_and_weekdays_are_not_topics() -> None:
    assert event_topic("any events this Friday?") == ""
    assert event_topic("events on Dec 4?") == ""
    assert event_topic("what is on the 4th of december about AI") == "ai"


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("anything next week?", datetime(2026, 12, 7), datetime(2026, 12, 14)),
        ("下周有什么活动？", datetime(2026, 12, 7), datetime(2026, 12, 14)),
        ("what's on tomorrow", datetime(2026, 12, 1), datetime(2026, 12, 2)),
        ("周末有活动吗", datetime(2026, 12, 5), datetime(2026, 12, 7)),
        ("any conferences in December?", datetime(2026, 12, 1), datetime(2027, 1, 1)),
        ("3月的活动", datetime(2027, 3, 1), datetime(2027, 4, 1)),
        ("events next month", datetime(2026, 12, 1), datetime(2027, 1, 1)),
        # a weekday is the coming one (today if it is today), as "next Friday" is in commands
        ("any events this Friday?", datetime(2026, 12, 4), datetime(2026, 12, 5)),
        ("anything next Friday?", datetime(2026, 12, 4), datetime(2026, 12, 5)),
        ("what's on monday", datetime(2026, 11, 30), datetime(2026, 12, 1)),
        # a date names that day, this year or the next
        ("events on Dec 4?", datetime(2026, 12, 4), datetime(2026, 12, 5)),
        ("what is on the 4th of december", datetime(2026, 12, 4), datetime(2026, 12, 5)),
        ("any meetup on may 3", datetime(2027, 5, 3), datetime(2027, 5, 4)),
    ],
)
def test_event_window_in_the_community_zone(text: str, start: datetime, end: datetime) -> None:
    window = event_window(text, now=NOW, tz=SHANGHAI)
    assert window is not None
    assert window.start == start.replace(tzinfo=SHANGHAI)
    assert window.end == end.replace(tzinfo=SHANGHAI)


def test_this_week_starts_now_and_no_window_without_a_period() -> None:
    window = event_window("what's on this week?", now=NOW, tz=SHANGHAI)
    assert window is not None and window.start == NOW and window.end == datetime(2026, 12, 7, tzinfo=SHANGHAI)
    assert event_window("what events are coming up?", now=NOW, tz=SHANGHAI) is None
    assert event_window("may I join the meetup?", now=NOW, tz=SHANGHAI) is None


def test_weekend_wins_over_this_week_and_a_named_year_is_kept() -> None:
    weekend = event_window("这周末有什么活动吗", now=NOW, tz=SHANGHAI)
    assert weekend is not None and weekend.start == datetime(2026, 12, 5, tzinfo=SHANGHAI)
    past_month = event_window("conferences in February 2026?", now=NOW, tz=SHANGHAI)
    assert past_month is not None
    assert (past_month.start, past_month.end) == (datetime(2026, 2, 1, tzinfo=SHANGHAI),
                                                  datetime(2026, 3, 1, tzinfo=SHANGHAI))
