"""The event jobs: reminders before events (``reminders``) and "people you should meet" after them
(``events``).

Both queue direct messages under keys that name them once (:mod:`bot.notifications`) and leave sending to
the dispatcher (:mod:`jobs.dispatch`), so running them every minute, twice, late or in two processes queues
nothing twice.

Reminders. An event's reminders are ``Event.reminders`` (minutes before its start), else its community's
``reminder_minutes`` (24 h and 1 h by default). For each scheduled event that has not started and each
offset whose time (start - offset) has come, every member going (RSVP ``yes``) is reminded, in their
language, under the key ``reminder:{event}:{member}:{offset}``, *due at the reminder's time*: the
dispatcher's grace window for reminders (30 min) then decides whether a reminder the bot could not send on
time (it was down) goes out late or is logged as missed; it is never sent twice. Who is reminded: a
member is reminded at an offset only if they were going at the reminder's time (their answer,
``Rsvp.updated_at``, is not later than it). Someone who says yes 2 h before the start gets the 1 h
reminder but not the 24 h one, which would arrive at once and say the wrong thing; a member moved up from
the waitlist counts from the moment of the promotion. Cancelled events and events that have started get
no reminders; cancelling an event, or a member's no, drops reminders queued and not yet sent
(:func:`bot.event_notices.notify_cancelled`, :mod:`bot.commands.rsvp`); moving an event re-plans them
(:func:`bot.event_notices.retire_reminders`).

Follow-ups. Where a community turned ``post_event_intros`` on, each attendee of an event that ended in the
last :data:`FOLLOWUP_WINDOW` is sent up to :data:`MAX_INTRODUCED` other attendees they should meet, ranked
by the matcher against the attendee's needs and skills (key ``met:{event}:{member}``). Only members who
agreed to be suggested (``consent_suggest``) are named; members who asked not to be introduced
(``intro_opt_out``) are neither named nor written to; an attendee without needs or skills, or without a
match above the threshold, gets nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.community import CommunitySettings, community_settings
from bot.db import session_scope
from bot.events import DEFAULT_DURATION, GOING, cant_go_button, event_finish
from bot.i18n import tr
from bot.members import member_language, member_zone
from bot.messages import Match, Reply
from bot.models import Community, Event, EventStatus, Member, Notification, Rsvp
from bot.notifications import queue_direct
from bot.ports import Matcher
from bot.reminder_offsets import MAX_REMINDER_MINUTES, format_offset, reminder_offsets
from bot.timefmt import format_when
from jobs.context import JobContext

#: How long after an event ends its attendees may still be introduced to each other.
FOLLOWUP_WINDOW = timedelta(days=2)
#: The most attendees named to one attendee after an event.
MAX_INTRODUCED = 3
#: How many members the matcher is asked for, per attendee (attendees among them are kept).
FOLLOWUP_CANDIDATES = 50


# --- reminders ----------------------------------------------------------------------------------------------

def run_reminders(ctx: JobContext, now: datetime) -> str:
    """The ``reminders`` job: queue the reminders due at ``now`` (see the module docstring) in every
    community; returns ``queued N reminder(s)``."""
    queued = 0
    with session_scope(ctx.engine) as session:
        for community in session.exec(select(Community).order_by(col(Community.id))).all():
            settings = community_settings(community, settings=ctx.settings)
            assert community.id is not None
            for event in _starting_soon(session, community.id, now):
                queued += _remind(session, event, settings, now)
    return f"queued {queued} reminder(s)"


def _starting_soon(session: Session, community_id: int, now: datetime) -> list[Event]:
    """Scheduled events of the community starting after ``now`` and within the longest reminder offset."""
    return list(session.exec(
        select(Event).where(Event.community_id == community_id, Event.status == EventStatus.SCHEDULED,
                            col(Event.starts_at) > now,
                            col(Event.starts_at) <= now + timedelta(minutes=MAX_REMINDER_MINUTES))
        .order_by(col(Event.starts_at), col(Event.id))
    ).all())


def _remind(session: Session, event: Event, settings: CommunitySettings, now: datetime) -> int:
    """Queue the reminders of ``event`` whose time has come; returns how many were queued."""
    due = [m for m in reminder_offsets(event, settings.reminder_minutes)
           if event.starts_at - timedelta(minutes=m) <= now]
    if not due:
        return 0
    going = _going(session, event)
    known = _keys_with_prefix(session, f"reminder:{event.id}:")
    queued = 0
    for offset in due:
        remind_at = event.starts_at - timedelta(minutes=offset)
        for rsvp, member in going:
            key = f"reminder:{event.id}:{member.id}:{offset}"
            if key in known or rsvp.updated_at > remind_at:
                continue
            queued += queue_direct(session, key=key, member=member, kind="reminder", due_at=remind_at,
                                   reply=reminder_reply(event, member, offset, settings, session=session))
    return queued


def reminder_reply(event: Event, member: Member, offset: int, settings: CommunitySettings, *,
                   session: Session | None = None) -> Reply:
    """The reminder ``offset`` minutes before ``event`` for ``member``, in their language and time zone:
    ``⏰ Reminder: #3 Demo night starts in 1 hour.`` then when and where, with a "can't go" button.

    The language is :func:`bot.members.member_language`'s: with ``session``, a member without a profile
    language gets the language of their latest message to the bot before the community's."""
    lang = member_language(member, settings.language, session=session)
    zone = member_zone(member, settings.zone)
    when = format_when(event.starts_at, tz=zone, language=lang)
    lines = [tr(lang, f"⏰ Reminder: #{event.id} {event.title} starts in {format_offset(offset, lang)}.",
                f"⏰ 提醒：#{event.id} {event.title} 将在 {format_offset(offset, lang)}后开始。"),
             tr(lang, f"When: {when} ({zone.key})", f"时间：{when}（{zone.key}）")]
    if event.place or event.link:
        where = event.place or event.link
        lines.append(tr(lang, f"Where: {where}", f"地点：{where}"))
    return Reply(text="\n".join(lines), language=lang, buttons=cant_go_button(event, lang))


def _going(session: Session, event: Event) -> list[tuple[Rsvp, Member]]:
    """The RSVPs ``yes`` of ``event`` with their members, in the order they answered."""
    rows = session.exec(
        select(Rsvp, Member).join(Member, col(Member.id) == col(Rsvp.member_id))
        .where(Rsvp.event_id == event.id, Rsvp.status == GOING).order_by(col(Rsvp.id))
    ).all()
    return [(rsvp, member) for rsvp, member in rows]


def _keys_with_prefix(session: Session, prefix: str) -> set[str]:
    """The keys of notifications queued under ``prefix`` (whatever their status)."""
    query = select(Notification.key).where(col(Notification.key).startswith(prefix, autoescape=True))
    return set(session.exec(query).all())


# --- after the event ----------------------------------------------------------------------------------------

def run_event_followups(ctx: JobContext, now: datetime) -> str:
    """The ``events`` job: in communities with ``post_event_intros`` on, queue each attendee of an event
    that ended in the last :data:`FOLLOWUP_WINDOW` the attendees they should meet (see the module
    docstring); returns ``queued N introduction(s)``.

    Raises:
        RuntimeError: there is work and the context has no matcher.
    """
    queued = 0
    with session_scope(ctx.engine) as session:
        for community in session.exec(select(Community).order_by(col(Community.id))).all():
            settings = community_settings(community, settings=ctx.settings)
            if not settings.post_event_intros:
                continue
            assert community.id is not None
            for event in _recently_ended(session, community.id, now):
                queued += _introduce_attendees(ctx, session, event, settings, now)
    return f"queued {queued} introduction(s)"


def _recently_ended(session: Session, community_id: int, now: datetime) -> list[Event]:
    """Scheduled events of the community that ended (:func:`bot.events.event_finish`) in the last
    :data:`FOLLOWUP_WINDOW` before ``now``."""
    earliest = now - FOLLOWUP_WINDOW
    rows = session.exec(
        select(Event).where(
            Event.community_id == community_id, Event.status == EventStatus.SCHEDULED,
            col(Event.starts_at) <= now,
            sa.func.coalesce(col(Event.ends_at), col(Event.starts_at)) >= earliest - DEFAULT_DURATION,
        ).order_by(col(Event.starts_at), col(Event.id))
    ).all()
    return [event for event in rows if earliest <= event_finish(event) <= now]


def _introduce_attendees(ctx: JobContext, session: Session, event: Event, settings: CommunitySettings,
                         now: datetime) -> int:
    """Queue the "people you should meet" message to each attendee of ``event`` not told yet."""
    attendees = [member for _, member in _going(session, event)]
    nameable = {m.id: m for m in attendees if m.consent_suggest and not m.intro_opt_out}
    known = _keys_with_prefix(session, f"met:{event.id}:")
    queued = 0
    for member in attendees:
        key = f"met:{event.id}:{member.id}"
        query = "; ".join(part.strip() for part in (member.needs, member.skills) if part.strip())
        if member.intro_opt_out or key in known or not query or not set(nameable) - {member.id}:
            continue
        picks = _people_to_meet(ctx.get_matcher(), event, member, query, nameable, settings)
        if picks:
            queued += queue_direct(session, key=key, member=member, kind="event_intro", due_at=now,
                                   reply=_meet_reply(event, member, picks, settings, session=session))
    return queued


def _people_to_meet(matcher: Matcher, event: Event, member: Member, query: str,
                    nameable: dict[int | None, Member], settings: CommunitySettings) -> list[Match]:
    """Up to :data:`MAX_INTRODUCED` other attendees in ``nameable`` ranked at or above the threshold."""
    matches = matcher.search(community_id=event.community_id, query=query, kinds=["member"],
                             top_k=FOLLOWUP_CANDIDATES, threshold=settings.match_threshold,
                             upcoming_only=False)
    picks = [m for m in matches if not m.below_threshold and m.id != member.id and m.id in nameable]
    return picks[:MAX_INTRODUCED]


def _meet_reply(event: Event, member: Member, picks: Sequence[Match], settings: CommunitySettings, *,
                session: Session | None = None) -> Reply:
    lang = member_language(member, settings.language, session=session)
    people = [f"• {match.title}" + (f" — {match.why}" if match.why else "") for match in picks]
    head = tr(lang, f"👋 Thanks for coming to #{event.id} {event.title}! People who were there and you "
                    "should meet:",
              f"👋 感谢参加 #{event.id} {event.title}！这些同场的成员值得认识：")
    foot = tr(lang, "Say hello to them directly!", "可以直接和他们打个招呼！")
    return Reply(text="\n".join([head, *people, foot]), language=lang)
