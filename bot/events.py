"""Events beyond one command: queries, how an event reads, its RSVP buttons, and its seats and waitlist.

An event is *over* when its end (or, without one, its start) is before now; cancelled events are never
upcoming. Seats: an event with a ``capacity`` seats that many ``yes`` answers; a ``yes`` beyond it is
stored as ``waitlist``, in line by the time of the answer (``Rsvp.updated_at``). When a seat frees up (a
member going says no or maybe, or the capacity is raised), :func:`bot.event_notices.promote_waitlisted`
gives it to the first in line and tells them. Lowering the capacity never takes a seat away from anyone.
Reminder offsets live in :mod:`bot.reminder_offsets`, the notices in :mod:`bot.event_notices`.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.i18n import tr
from bot.messages import Button
from bot.models import Event, EventStatus, Member, Rsvp
from bot.timefmt import format_event_when, format_when

#: RSVP statuses (``Rsvp.status``): going, not going, maybe, and in line for a seat of a full event.
GOING, NOT_GOING, MAYBE, WAITLIST = "yes", "no", "maybe", "waitlist"
#: Button actions on event replies; the value is the event id (see :func:`bot.commands.rsvp.button_command`).
RSVP_YES_ACTION = "rsvp"
RSVP_NO_ACTION = "rsvp_no"
#: How long an event without an end is taken to last (for "after the event").
DEFAULT_DURATION = timedelta(hours=2)


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
        maybe = counts[MAYBE]
        text = tr(language, f"{going} going, {maybe} maybe", f"{going} 人报名，{maybe} 人待定")
        if counts[WAITLIST]:
            text += tr(language, f", {counts[WAITLIST]} on the waitlist", f"，{counts[WAITLIST]} 人候补")
        parts.append(text)
    if event.status == EventStatus.CANCELLED:
        parts.append(tr(language, "CANCELLED", "已取消"))
    return " · ".join(parts)


def event_finish(event: Event) -> datetime:
    """When ``event`` is over for follow-ups: its end, else its start plus :data:`DEFAULT_DURATION`."""
    return event.ends_at or event.starts_at + DEFAULT_DURATION


def rsvp_buttons(event: Event, language: str) -> tuple[Button, ...]:
    """The RSVP yes / no buttons of an event reply (none for a cancelled event); each platform renders them
    its own way (Slack buttons, WeChat reply codes)."""
    if event.status == EventStatus.CANCELLED:
        return ()
    value = str(event.id)
    return (Button(label=tr(language, "RSVP", "报名"), action=RSVP_YES_ACTION, value=value),
            Button(label=tr(language, "Can't go", "不去了"), action=RSVP_NO_ACTION, value=value))


def cant_go_button(event: Event, language: str) -> tuple[Button, ...]:
    """Only the "can't go" button (for reminders and promotions: the member is going already)."""
    return rsvp_buttons(event, language)[1:]


def event_summary(session: Session, event: Event, *, language: str, zone: ZoneInfo) -> str:
    """Several lines about ``event`` for a reader in ``zone``: ``#3 Title``, when (with its end and the
    zone), where, capacity, organiser and description (only the lines that have something to say)."""
    when = format_when(event.starts_at, tz=zone, language=language)
    if event.ends_at is not None:
        when += " – " + format_when(event.ends_at, tz=zone, language=language)
    lines = [f"#{event.id} {event.title}",
             tr(language, f"When: {when} ({zone.key})", f"时间：{when}（{zone.key}）")]
    if event.place:
        lines.append(tr(language, f"Where: {event.place}", f"地点：{event.place}"))
    if event.capacity:
        lines.append(tr(language, f"Capacity: {event.capacity}", f"人数上限：{event.capacity}"))
    organiser = session.get(Member, event.organiser_member_id) if event.organiser_member_id else None
    if organiser is not None:
        name = organiser.display_name
        lines.append(tr(language, f"Organiser: {name}", f"组织者：{name}"))
    if event.description:
        lines.append(event.description)
    return "\n".join(lines)


# --- seats and the waitlist -----------------------------------------------------------------------------

def going_count(session: Session, event_id: int) -> int:
    """How many members said yes (hold a seat)."""
    query = select(sa.func.count()).select_from(Rsvp).where(Rsvp.event_id == event_id, Rsvp.status == GOING)
    return int(session.exec(query).one())


def waitlist(session: Session, event_id: int) -> list[Rsvp]:
    """The waitlist of an event, first in line first (by the time of the answer, then the row id)."""
    return list(session.exec(
        select(Rsvp).where(Rsvp.event_id == event_id, Rsvp.status == WAITLIST)
        .order_by(col(Rsvp.updated_at), col(Rsvp.id))
    ).all())


def waitlist_position(session: Session, event_id: int, member_id: int) -> int | None:
    """``member_id``'s place in line (1 = next to get a seat), ``None`` when not on the waitlist."""
    for place, row in enumerate(waitlist(session, event_id), start=1):
        if row.member_id == member_id:
            return place
    return None


def has_free_seat(session: Session, event: Event) -> bool:
    """Whether a new ``yes`` gets a seat: no capacity, or fewer members going than it."""
    assert event.id is not None
    return not event.capacity or going_count(session, event.id) < event.capacity
