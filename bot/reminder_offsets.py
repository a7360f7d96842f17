"""Reminder offsets: when attendees are reminded before an event, written ``24h, 1h``, ``30m``, ``2d``,
``1天,1小时`` or ``none``, kept as whole minutes before the start."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.i18n import tr
from bot.models import Event

#: Reminders when neither the event nor the community says otherwise: 24 h and 1 h before the start.
DEFAULT_REMINDERS: tuple[int, ...] = (1440, 60)
#: The longest reminder offset, in minutes (30 days).
MAX_REMINDER_MINUTES = 30 * 24 * 60
_UNITS = {
    "m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "分": 1, "分钟": 1,
    "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60, "小时": 60, "个小时": 60, "钟头": 60,
    "d": 1440, "day": 1440, "days": 1440, "天": 1440, "日": 1440,
    "w": 10080, "week": 10080, "weeks": 10080, "周": 10080, "星期": 10080,
}
_PART = re.compile(r"(\d+)\s*(" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True)) + r")?")
_OFFSET_SPLIT = re.compile(r"[,，、;；]+|\s+(?=\d)")
_NO_REMINDERS = frozenset({"none", "off", "no", "never", "无", "不提醒", "关闭", "关"})


def parse_reminder_offsets(text: str) -> list[int]:
    """Reminder offsets as people write them, in minutes before the start, longest first, without repeats.

    ``24h,1h`` -> ``[1440, 60]``; ``30m``, ``2d``, ``1w``, ``1h30m``, a bare number (minutes) and
    Chinese units (``1天,1小时``, ``30分钟``) work too; items are separated by commas (also ``，`` and
    ``、``) or spaces;
    ``none`` / ``off`` / ``不提醒`` gives ``[]`` (no reminders).

    Raises:
        ValueError: an item is not a duration, or is zero or longer than 30 days; ``args[0]`` is that item
            as typed.
    """
    text = unicodedata.normalize("NFKC", text).strip()
    if text.lower() in _NO_REMINDERS:
        return []
    minutes = {_offset_minutes(item.strip()) for item in _OFFSET_SPLIT.split(text) if item.strip()}
    if not minutes:
        raise ValueError(text)
    return sorted(minutes, reverse=True)


def _offset_minutes(item: str) -> int:
    total, pos, folded = 0, 0, item.lower().replace(" ", "")
    while pos < len(folded):
        match = _PART.match(folded, pos)
        if match is None or match.end() == pos:
            raise ValueError(item)
        total += int(match.group(1)) * _UNITS.get(match.group(2) or "m", 1)
        pos = match.end()
    if not 0 < total <= MAX_REMINDER_MINUTES:
        raise ValueError(item)
    return total


def format_offset(minutes: int, language: str) -> str:
    """An offset as people say it: ``1 day``, ``1 hour``, ``1 h 30 min``; ``1天``, ``1小时``,
    ``1小时30分钟``."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if language == "zh":
        return "".join(f"{n}{unit}" for n, unit in ((days, "天"), (hours, "小时"), (mins, "分钟")) if n)
    if days and not rest:
        return f"{days} day{'s' if days > 1 else ''}"
    if not days and hours and not mins:
        return f"{hours} hour{'s' if hours > 1 else ''}"
    if not days and not hours:
        return f"{mins} minute{'s' if mins > 1 else ''}"
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "min")) if n)


def format_offsets(minutes: Sequence[int], language: str) -> str:
    """Several offsets: ``1 day and 1 hour before`` / ``开始前 1天、1小时``; ``none`` / ``不提醒`` when
    there are none."""
    if not minutes:
        return tr(language, "none", "不提醒")
    parts = [format_offset(m, language) for m in minutes]
    if language == "zh":
        return "开始前 " + "、".join(parts)
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{joined} before"


def reminder_offsets(event: Event, default: Sequence[int]) -> list[int]:
    """The event's reminder offsets in minutes: its own (``Event.reminders``), else ``default`` (the
    community's ``reminder_minutes``)."""
    return list(event.reminders if event.reminders is not None else default)
