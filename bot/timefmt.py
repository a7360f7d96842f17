"""Showing aware datetimes to people, in a community's time zone and the reader's language."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


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
