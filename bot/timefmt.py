"""Showing aware datetimes to people, in a community's time zone and the reader's language."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def format_when(moment: datetime, *, tz: ZoneInfo, language: str = "en") -> str:
    """``moment`` as wall time in ``tz``: ``Mon 10 May 2027, 18:00`` or ``2027年5月10日（周一）18:00``."""
    local = moment.astimezone(tz)
    clock, weekday = f"{local:%H:%M}", local.weekday()
    if language == "zh":
        return f"{local.year}年{local.month}月{local.day}日（周{_ZH_DAYS[weekday]}）{clock}"
    return f"{_EN_DAYS[weekday]} {local.day} {_EN_MONTHS[local.month - 1]} {local.year}, {clock}"


_ZH_DAYS = "一二三四五六日"
_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def zone_or_utc(name: str | None) -> ZoneInfo:
    """``ZoneInfo(name)``, or UTC when ``name`` is empty or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_day(moment: datetime, *, language: str = "en") -> str:
    """The calendar day of an aware ``moment`` in its own zone.

    ``Mon 7 Dec 2026`` in English, ``2026年12月7日（周一）`` in Chinese.
    """
    if language == "zh":
        return f"{moment.year}年{moment.month}月{moment.day}日（周{_ZH_DAYS[moment.weekday()]}）"
    return f"{_EN_DAYS[moment.weekday()]} {moment.day} {_EN_MONTHS[moment.month - 1]} {moment.year}"


def format_event_when(
    *, starts_at: datetime, ends_at: datetime | None, all_day: bool, event_timezone: str, tz: ZoneInfo,
    language: str = "en",
) -> str:
    """When an event happens, for a reader in ``tz``.

    Timed events are shown at their start in ``tz``. All-day events are dates, shown in the event's own
    zone (a date has no clock time to convert): ``Mon 7 Dec 2026 – Thu 10 Dec 2026 (all day)``.
    """
    if not all_day:
        return format_when(starts_at, tz=tz, language=language)
    zone = zone_or_utc(event_timezone)
    first = starts_at.astimezone(zone)
    text = format_day(first, language=language)
    if ends_at is not None:
        # an all-day end is exclusive (iCalendar): the last day is the one before it
        last = (ends_at.astimezone(zone) - timedelta(microseconds=1)).replace(hour=0)
        if last.date() > first.date():
            text += " – " + format_day(last, language=language)
    return text + ("（全天）" if language == "zh" else " (all day)")
