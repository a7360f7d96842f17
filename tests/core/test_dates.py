"""Reading event dates in a community's time zone; expected values are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.commands.dates import DEFAULT_START, looks_like_date_start, parse_when
from bot.errors import UsageError
from bot.timefmt import format_when

# Friday 1 January 2027, 09:00 UTC = Fri 17:00 in Shanghai (UTC+8) = Fri 01:00 in Los Angeles (PST, UTC-8).
NOW = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.mark.parametrize(("text", "expected"), [
    # next week's Friday is 8 January
    ("next Friday 7pm", local(SHANGHAI, 2027, 1, 8, 19, 0)),
    ("下周五晚上7点", local(SHANGHAI, 2027, 1, 8, 19, 0)),
    ("明天下午3点", local(SHANGHAI, 2027, 1, 2, 15, 0)),
    ("2027-05-10 18:00", local(SHANGHAI, 2027, 5, 10, 18, 0)),
    ("12月20日 19:30", local(SHANGHAI, 2027, 12, 20, 19, 30)),
    ("周六 14:00", local(SHANGHAI, 2027, 1, 2, 14, 0)),
    ("今晚8点半", local(SHANGHAI, 2027, 1, 1, 20, 30)),
    ("本周日上午十点", local(SHANGHAI, 2027, 1, 3, 10, 0)),
    ("下个星期一 9:15", local(SHANGHAI, 2027, 1, 4, 9, 15)),
    ("2027年5月10日 晚上7点", local(SHANGHAI, 2027, 5, 10, 19, 0)),
    ("１２月２０日 １９：３０", local(SHANGHAI, 2027, 12, 20, 19, 30)),  # full-width digits
    ("十二月二十日", local(SHANGHAI, 2027, 12, 20, 18, 0)),
    ("中午1点", local(SHANGHAI, 2027, 1, 2, 13, 0)),  # 13:00 today has passed (it is 17:00): tomorrow
    ("7pm", local(SHANGHAI, 2027, 1, 1, 19, 0)),
    ("7am", local(SHANGHAI, 2027, 1, 2, 7, 0)),
    ("周五上午8点", local(SHANGHAI, 2027, 1, 8, 8, 0)),  # today's 08:00 has passed: next Friday
    ("2027/5/10 7pm", local(SHANGHAI, 2027, 5, 10, 19, 0)),
    ("tomorrow 3pm", local(SHANGHAI, 2027, 1, 2, 15, 0)),
])
def test_shanghai(text: str, expected: datetime) -> None:
    got = parse_when(text, tz=SHANGHAI, now=NOW)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(("text", "expected"), [
    ("next Friday 7pm", local(LOS_ANGELES, 2027, 1, 8, 19, 0)),
    ("下周五晚上7点", local(LOS_ANGELES, 2027, 1, 8, 19, 0)),
    ("明天下午3点", local(LOS_ANGELES, 2027, 1, 2, 15, 0)),
    ("12月20日 19:30", local(LOS_ANGELES, 2027, 12, 20, 19, 30)),
    ("周六 14:00", local(LOS_ANGELES, 2027, 1, 2, 14, 0)),
    ("中午1点", local(LOS_ANGELES, 2027, 1, 1, 13, 0)),  # it is 01:00 here: still today
])
def test_los_angeles(text: str, expected: datetime) -> None:
    assert parse_when(text, tz=LOS_ANGELES, now=NOW) == expected


def test_daylight_saving_time_is_that_of_the_date() -> None:
    got = parse_when("2027-05-10 18:00", tz=LOS_ANGELES, now=NOW)
    assert got.utcoffset() == timedelta(hours=-7)
    assert got.astimezone(UTC) == datetime(2027, 5, 11, 1, 0, tzinfo=UTC)
    assert parse_when("May 10 6pm", tz=LOS_ANGELES, now=NOW).astimezone(UTC) == datetime(2027, 5, 11, 1, 0,
                                                                                         tzinfo=UTC)


def test_next_week_differs_from_this_week_mid_week() -> None:
    wednesday = datetime(2027, 1, 6, 2, 0, tzinfo=UTC)  # Wed 6 Jan, 10:00 in Shanghai
    assert parse_when("下周五", tz=SHANGHAI, now=wednesday).date() == datetime(2027, 1, 15).date()
    assert parse_when("周五", tz=SHANGHAI, now=wednesday).date() == datetime(2027, 1, 8).date()
    assert parse_when("这周五", tz=SHANGHAI, now=wednesday).date() == datetime(2027, 1, 8).date()
    assert parse_when("下下周一", tz=SHANGHAI, now=wednesday).date() == datetime(2027, 1, 18).date()


def test_date_only_starts_at_the_default_time() -> None:
    assert DEFAULT_START.hour == 18
    assert parse_when("2027-05-10", tz=SHANGHAI, now=NOW) == local(SHANGHAI, 2027, 5, 10, 18, 0)
    assert parse_when("May 10", tz=SHANGHAI, now=NOW) == local(SHANGHAI, 2027, 5, 10, 18, 0)
    assert parse_when("下周五", tz=SHANGHAI, now=NOW) == local(SHANGHAI, 2027, 1, 8, 18, 0)


def test_month_day_without_year_is_the_next_one_ahead() -> None:
    late = datetime(2027, 12, 25, 0, 0, tzinfo=UTC)
    assert parse_when("12月20日 19:30", tz=SHANGHAI, now=late) == local(SHANGHAI, 2028, 12, 20, 19, 30)


def test_iso_with_offset_is_converted_to_the_zone() -> None:
    assert parse_when("2027-05-10T18:00Z", tz=SHANGHAI, now=NOW) == local(SHANGHAI, 2027, 5, 11, 2, 0)


@pytest.mark.parametrize("text", ["2026-12-31 18:00", "今天上午8点", "本周一"])
def test_past_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="That date is in the past"):
        parse_when(text, tz=SHANGHAI, now=NOW)
    assert parse_when(text, tz=SHANGHAI, now=NOW, allow_past=True) < NOW


def test_past_message_in_chinese() -> None:
    with pytest.raises(UsageError, match="已经过去"):
        parse_when("2026-12-31", tz=SHANGHAI, now=NOW, language="zh")


@pytest.mark.parametrize("text", ["", "blah", "next week", "10", "2027-13-45", "13月40日"])
def test_unreadable_dates_say_which_forms_work(text: str) -> None:
    with pytest.raises(UsageError, match="Forms that work: 2027-05-10 18:00"):
        parse_when(text, tz=SHANGHAI, now=NOW)


def test_format_when() -> None:
    moment = local(SHANGHAI, 2027, 5, 10, 18, 0)
    assert format_when(moment, tz=SHANGHAI) == "Mon 10 May 2027, 18:00"
    assert format_when(moment, tz=SHANGHAI, language="zh") == "2027年5月10日（周一）18:00"
    assert format_when(moment, tz=LOS_ANGELES) == "Mon 10 May 2027, 03:00"


@pytest.mark.parametrize(("word", "expected"), [
    ("2027-05-10", True), ("next", True), ("Friday", True), ("下周五晚上7点", True), ("明天", True),
    ("12月20日", True), ("Meetup", False), ("Q&A", False), ("聚会", False),
])
def test_looks_like_date_start(word: str, expected: bool) -> None:
    assert looks_like_date_start(word) is expected
