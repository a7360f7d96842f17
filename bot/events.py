"""Event queries shared by the ``/event`` commands and the ``find_event`` intent.

An event is *over* when its end (or, without one, its start) is before now; cancelled events are never
upcoming.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.i18n import tr
from bot.models import Event, EventStatus
from bot.timefmt import format_event_when


def is_past(event: Event, now: datetime) -> bool:
    """Whether ``event`` has ended: its end (or, without one, its start) is before ``now``."""
    return (event.ends_at or event.starts_at) < now


def _finish() -> sa.ColumnElement[datetime]:
    return sa.func.coalesce(col(Event.ends_at), col(Event.starts_at))


def upcoming_events(
    session: Session, *, community_id: int, now: datetime, start: datetime | None = None,
    end: datetime | None = None, limit: int = 20,
) -> list[Event]:
    """Scheduled events not over at ``max(now, start)`` and starting before ``end``, by start time.

    Args:
        start, end: an optional window ``[start, end)`` (aware datetimes); events overlapping it count.
        limit: at most this many events.
    """
    lower = max(now, start) if start else now
    query = select(Event).where(
        Event.community_id == community_id, Event.status == EventStatus.SCHEDULED, _finish() >= lower
    )
    if end is not None:
        query = query.where(col(Event.starts_at) < end)
    return list(session.exec(query.order_by(col(Event.starts_at), col(Event.id)).limit(limit)))


def past_events(session: Session, *, community_id: int, now: datetime, limit: int = 20) -> list[Event]:
    """Scheduled events already over, most recent first."""
    query = select(Event).where(
        Event.community_id == community_id, Event.status == EventStatus.SCHEDULED, _finish() < now
    )
    return list(session.exec(query.order_by(col(Event.starts_at).desc()).limit(limit)))


def event_when(event: Event, *, tz: ZoneInfo, language: str) -> str:
    """When ``event`` happens, for a reader in ``tz`` (all-day events as dates in their own zone)."""
    return format_event_when(starts_at=event.starts_at, ends_at=event.ends_at, all_day=event.all_day,
                             event_timezone=event.timezone, tz=tz, language=language)


def event_line(event: Event, *, tz: ZoneInfo, language: str, counts: Counter[str] | None = None) -> str:
    """One line: ``#3 Spring Meetup — Mon 10 May 2027, 18:00 · Room 3 · 2 going, 1 maybe``."""
    when = event_when(event, tz=tz, language=language)
    parts = [f"#{event.id} {event.title} — {when}"]
    if event.place or event.link:
        parts.append(event.place or event.link)
    if counts is not None:
        going = f"{counts['yes']}/{event.capacity}" if event.capacity else str(counts["yes"])
        parts.append(tr(language, f"{going} going, {counts['maybe']} maybe",
                        f"{going} 人报名，{counts['maybe']} 人待定"))
    if event.status == EventStatus.CANCELLED:
        parts.append(tr(language, "CANCELLED", "已取消"))
    return " · ".join(parts)
