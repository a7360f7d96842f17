"""Reading and showing event dates: ISO, English and Chinese, in a community's time zone.

:func:`parse_when` tries, in order:

1. strict ISO 8601 (``2027-05-10``, ``2027-05-10 18:00``, ``2027-05-10T18:00+02:00``) with
   ``dateutil.parser.isoparse``;
2. our own small reader for Chinese dates and clock times, which dateparser only partly understands:
   ``下周五晚上7点``, ``明天下午3点``, ``今晚8点半``, ``周六 14:00``, ``本周三上午十点``, ``12月20日 19:30``,
   ``2027年5月10日``, ``2027/5/10 7pm``, and a bare clock time (``7pm``, ``19:30``, ``晚上7点``);
3. ``dateparser`` (English and Chinese, dates preferred from the future, relative to ``now`` in the
   community's time zone) for everything else: ``next Friday 7pm``, ``tomorrow 3pm``, ``May 10``,
   ``in 3 days``.

Conventions:

* Weeks start on Monday. ``下周五`` is the Friday of next week; ``本周五``/``这周五`` the Friday of this
  week; a bare ``周五``/``星期五`` the next Friday that is still ahead (today if the time is still to come).
* ``下午``/``傍晚``/``晚上`` + N点 means N+12 o'clock; ``中午1点`` is 13:00; ``N点半`` is N:30.
* A date without a time starts at :data:`DEFAULT_START` (18:00 local: evening meetups are the norm).
* A clock time without a date is today, or tomorrow once that time has passed.
* A month and day without a year (``12月20日``) is the next such day that is still ahead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateparser.date import DateDataParser
from dateutil.parser import isoparse

from bot.errors import UsageError
from bot.i18n import tr
from bot.timefmt import format_when

#: Start time of an event given with a date only.
DEFAULT_START = time(18, 0)

_FORMS_EN = ("2027-05-10 18:00, 'next Friday 7pm', 'tomorrow 3pm', 'May 10', "
             "'下周五晚上7点' or '12月20日 19:30'")
_FORMS_ZH = "2027-05-10 18:00、下周五晚上7点、明天下午3点、周六 14:00、12月20日 19:30 或 next Friday 7pm"


def parse_when(text: str, *, tz: ZoneInfo, now: datetime, language: str = "en",
               allow_past: bool = False) -> datetime:
    """The moment ``text`` names, read in time zone ``tz`` relative to ``now``.

    Args:
        text: a date and/or time as typed (see the module docstring for the forms).
        tz: the community's time zone; wall-clock times in ``text`` are in it.
        now: the current moment (aware).
        language: language of error messages (``en``/``zh``).
        allow_past: accept a moment before ``now`` (otherwise it is refused).

    Returns:
        An aware datetime in ``tz``.

    Raises:
        UsageError: ``text`` is not a date this reader knows (the message lists forms that work), names an
            impossible date or one that cannot be stored (beyond the year 9999 in UTC), or lies in the
            past while ``allow_past`` is false.
    """
    cleaned = _clean(text)
    local_now = now.astimezone(tz)
    result = None
    try:  # an ISO time with an offset near year 1 or 9999 may not exist in ``tz`` (OverflowError)
        if cleaned:
            result = (_parse_iso(cleaned, tz) or _parse_parts(cleaned, local_now)
                      or _parse_natural(cleaned, local_now))
        if result is not None:
            result.astimezone(UTC)  # stored as UTC: 9999-12-31 23:59 in New York is not a UTC time
    except OverflowError as exc:
        given = text.strip()
        raise UsageError(tr(language, f"The date {given!r} is too far away; give one before the year 9999.",
                            f"日期「{given}」太远了，请给一个 9999 年之前的日期。")) from exc
    if result is None:
        given = text.strip()
        raise UsageError(tr(language, f"I can't read the date {given!r}. Forms that work: {_FORMS_EN}.",
                            f"看不懂日期「{given}」。可以这样写：{_FORMS_ZH}。"))
    if not allow_past and result < now:
        shown = format_when(result, tz=tz, language=language)
        raise UsageError(tr(language, f"That date is in the past ({shown}). Please give a future date.",
                            f"这个时间已经过去了（{shown}）。请给一个将来的日期和时间。"))
    return result


def looks_like_date_start(word: str) -> bool:
    """Whether ``word`` could begin a date (a digit, ``next``, ``tomorrow``, a weekday or month, ``下周``...).

    Used to find where an unquoted title ends and its date begins.
    """
    word = _clean(word).lower()
    return bool(word) and (word[0].isdigit() or word in _EN_DATE_WORDS or bool(_ZH_DATE_START.match(word)))


_EN_DATE_WORDS = frozenset({
    "today", "tonight", "tomorrow", "next", "this", "on", "in", "noon", "midnight",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "january", "february", "march", "april", "june", "july", "august", "september", "october",
    "november", "december",
})
_ZH_DATE_START = re.compile(
    r"(今|明|后天|大后天|下|本周|这|周[一二三四五六日天1-7]|星期|礼拜|[一二三四五六七八九十]+月)"
)


def _clean(text: str) -> str:
    """NFKC (full-width digits and colons to ASCII), 今晚/明晚 spelled out, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("今晚", "今天晚上").replace("明晚", "明天晚上")
    return " ".join(text.split())


# --- 1. ISO 8601 -------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?P<time>[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def _parse_iso(text: str, tz: ZoneInfo) -> datetime | None:
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    try:
        parsed = isoparse(text)
    except ValueError:
        return None
    if not match.group("time"):
        return datetime.combine(parsed.date(), DEFAULT_START, tzinfo=tz)
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


# --- 2. Chinese dates and clock times ------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_NUM = r"\d{1,2}|[零〇一二两三四五六七八九十]{1,3}"
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "7": 6,
             "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5}
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
#: Default hour of a bare period of the day (``周五晚上``).
_PERIOD_HOURS = {"早上": 8, "早晨": 8, "上午": 10, "中午": 12, "下午": 15, "傍晚": 18, "晚上": 19}
_AFTERNOON = ("下午", "傍晚", "晚上")

_FULL_DATE = re.compile(r"(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?")
_MONTH_DAY = re.compile(rf"(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})\s*[日号]")
_RELATIVE = re.compile("|".join(sorted(_RELATIVE_DAYS, key=len, reverse=True)))
_WEEKDAY = re.compile(r"(?P<which>下下个?|下个?|本|这个?)?\s*(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])")
_PERIOD = re.compile(r"凌晨|早上|早晨|上午|中午|下午|傍晚|晚上")
_CN_CLOCK = re.compile(rf"(?P<h>{_NUM})\s*[点點时時](?:\s*(?P<half>半)|\s*(?P<quarter>一刻|三刻)"
                       rf"|\s*(?P<min>{_NUM})\s*分?)?")
_HHMM = re.compile(r"(?P<h>\d{1,2}):(?P<min>\d{2})(?:\s*(?P<ampm>[ap]\.?m\.?))?", re.IGNORECASE)
_AMPM = re.compile(r"(?P<h>\d{1,2})\s*(?P<ampm>[ap]\.?m\.?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Day:
    """A resolved calendar day and how to move it if the moment it gives has already passed."""

    day: date
    roll: Callable[[datetime], datetime] | None = None


def _next_year(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment


def _cn_int(text: str) -> int:
    """``"7"`` -> 7, ``"七"`` -> 7, ``"十二"`` -> 12, ``"二十"`` -> 20."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    value = 0
    for char in text:
        value = value * 10 + _CN_DIGITS[char]
    return value


def _match_day(text: str, pos: int, today: date) -> tuple[_Day, int] | None:
    """A date at ``text[pos:]`` and the position after it (``ValueError`` for an impossible date)."""
    if m := _FULL_DATE.match(text, pos):
        return _Day(date(int(m["y"]), int(m["m"]), int(m["d"]))), m.end()
    if m := _MONTH_DAY.match(text, pos):
        return _Day(date(today.year, _cn_int(m["m"]), _cn_int(m["d"])), _next_year), m.end()
    if m := _RELATIVE.match(text, pos):
        return _Day(today + timedelta(days=_RELATIVE_DAYS[m.group()])), m.end()
    if m := _WEEKDAY.match(text, pos):
        weekday = _WEEKDAYS[m["wd"]]
        which = (m["which"] or "").rstrip("个")
        if not which:
            ahead = (weekday - today.weekday()) % 7
            return _Day(today + timedelta(days=ahead), lambda d: d + timedelta(days=7)), m.end()
        monday = today - timedelta(days=today.weekday())
        weeks = {"下下": 2, "下": 1}.get(which, 0)
        return _Day(monday + timedelta(weeks=weeks, days=weekday)), m.end()
    return None


def _match_clock(text: str, pos: int) -> tuple[time, int, int] | None:
    """A clock time at ``text[pos:]``: ``(time, extra days, position after it)``, or ``None``."""
    period_match = _PERIOD.match(text, pos)
    period = period_match.group() if period_match else ""
    if period_match:
        pos = period_match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    minute, ampm = 0, ""
    if m := _CN_CLOCK.match(text, pos):
        hour = _cn_int(m["h"])
        if m["half"]:
            minute = 30
        elif m["quarter"]:
            minute = 15 if m["quarter"] == "一刻" else 45
        elif m["min"]:
            minute = _cn_int(m["min"])
    elif (m := _HHMM.match(text, pos)) or (m := _AMPM.match(text, pos)):
        hour = int(m["h"])
        minute = int(m.groupdict().get("min") or 0)
        ampm = (m["ampm"] or "")[:1].lower()
    elif period in _PERIOD_HOURS:
        return time(_PERIOD_HOURS[period]), 0, pos
    else:
        return None
    extra_days = 0
    if ((period in _AFTERNOON or ampm == "p") and hour < 12) or (period == "中午" and hour < 6):
        hour += 12
    elif (period == "凌晨" or ampm == "a") and hour == 12:
        hour = 0
    elif period == "晚上" and hour == 12:
        hour, extra_days = 0, 1
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute), extra_days, m.end()


def _parse_parts(text: str, local_now: datetime) -> datetime | None:
    """``[DATE] [TIME]`` in the Chinese / numeric forms above, covering all of ``text``; else ``None``."""
    tz = local_now.tzinfo
    assert tz is not None
    today = local_now.date()
    try:
        day_match = _match_day(text, 0, today)
    except ValueError:
        return None
    day, pos = day_match if day_match else (None, 0)
    while pos < len(text) and (text[pos].isspace() or text[pos] in ",，"):
        pos += 1
    clock = _match_clock(text, pos)
    if clock is not None:
        pos = clock[2]
    if pos != len(text) or (day is None and clock is None):
        return None
    if day is None:
        day = _Day(today, lambda d: d + timedelta(days=1))
    start, extra_days = (clock[0], clock[1]) if clock else (DEFAULT_START, 0)
    moment = datetime.combine(day.day + timedelta(days=extra_days), start, tzinfo=tz)
    if moment < local_now and day.roll is not None:
        moment = day.roll(moment)
    return moment


# --- 3. dateparser -----------------------------------------------------------------------------------------

#: dateparser periods that name a moment or a day ("next week", "May" and "2027" do not).
_USABLE_PERIODS = frozenset({"time", "part_of_day", "day"})


def _parse_natural(text: str, local_now: datetime) -> datetime | None:
    tz = local_now.tzinfo
    assert isinstance(tz, ZoneInfo)
    parser = DateDataParser(languages=["en", "zh"], settings={
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": local_now.replace(tzinfo=None),
        "TIMEZONE": str(tz),
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RETURN_TIME_AS_PERIOD": True,
    })
    data = parser.get_date_data(text)
    if data.date_obj is None or data.period not in _USABLE_PERIODS:
        return None
    found = data.date_obj
    local = found.replace(tzinfo=tz) if found.tzinfo is None else found.astimezone(tz)
    if data.period == "day":
        return datetime.combine(local.date(), DEFAULT_START, tzinfo=tz)
    return local
