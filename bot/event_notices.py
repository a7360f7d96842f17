"""The notices the bot queues about events: announcements in the community's channels, personal alerts to
members whose interests match, promotions off the waitlist, cancellations, and the bookkeeping of reminders
when an event moves.

Notices are never sent from here: they are queued as :class:`bot.models.Notification` rows under keys that
name them once (:mod:`bot.notifications`), and the dispatcher of the scheduler sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.events import (
    GOING,
    MAYBE,
    WAITLIST,
    cant_go_button,
    event_summary,
    has_free_seat,
    is_past,
    rsvp_buttons,
    waitlist,
)
from bot.i18n import tr
from bot.members import member_language, member_zone
from bot.messages import Match, Reply
from bot.models import Event, EventStatus, Member, Notification, NotificationStatus, Rsvp
from bot.notifications import queue_direct, queue_notification, split_target
from bot.ports import Matcher
from bot.timefmt import format_when

log = logging.getLogger(__name__)


def promote_waitlisted(session: Session, event: Event, *, now: datetime, language: str,
                       zone: ZoneInfo) -> list[Member]:
    """Give free seats of ``event`` to the first in line, while there are seats and people waiting; each is
    set to ``yes`` (answered ``now``: reminders due before it are not sent to them) and told by a queued
    direct message in their language (:func:`bot.members.member_language`: their profile's, else that of
    their latest message; ``language``, the community's, is the fallback) under the key
    ``promoted:{event}:{member}:{n}`` (``n``: their n-th promotion to this event).

    Returns the members promoted, in order (none for a cancelled, past or full event, or an empty line).
    """
    assert event.id is not None
    promoted: list[Member] = []
    if event.status == EventStatus.CANCELLED or is_past(event, now):
        return promoted
    line = waitlist(session, event.id)
    while line and has_free_seat(session, event):
        row = line.pop(0)
        row.status, row.updated_at = GOING, now
        session.add(row)
        session.flush()
        member = session.get(Member, row.member_id)
        if member is not None:
            _tell_promoted(session, event, member, now=now, language=language, zone=zone)
            promoted.append(member)
    return promoted


def _tell_promoted(session: Session, event: Event, member: Member, *, now: datetime, language: str,
                   zone: ZoneInfo) -> None:
    prefix = f"promoted:{event.id}:{member.id}:"
    earlier = session.exec(select(sa.func.count()).select_from(Notification)
                           .where(col(Notification.key).startswith(prefix, autoescape=True))).one()
    lang = member_language(member, language, session=session)
    when = format_when(event.starts_at, tz=member_zone(member, zone), language=lang)
    text = tr(lang, f"🎉 A place opened up: you're now going to #{event.id} {event.title} ({when}). "
                    "If you can't make it after all, say so, and the next person in line gets the place.",
              f"🎉 有空位了：你已从候补转为正式报名 #{event.id} {event.title}（{when}）。"
              "如果去不了，请告诉我，名额会让给下一位候补。")
    queue_direct(session, key=f"{prefix}{int(earlier) + 1}", member=member, kind="promotion",
                 reply=Reply(text=text, language=lang, buttons=cant_go_button(event, lang)), due_at=now)


def skip_pending(session: Session, *, key_prefix: str) -> int:
    """Mark the queued, not yet sent notifications whose key starts with ``key_prefix`` as ``skipped``
    (``reminder:3:`` = every reminder of event 3); returns how many."""
    result = session.exec(
        sa.update(Notification)
        .where(col(Notification.key).startswith(key_prefix, autoescape=True),
               col(Notification.status) == NotificationStatus.PENDING)
        .values(status=NotificationStatus.SKIPPED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def retire_reminders(session: Session, event: Event, *, now: datetime) -> None:
    """Make way for new reminders of an event whose time or reminders changed: its reminders not sent yet
    are ``skipped``, and the keys of those already sent, missed or skipped get ``:moved:{now}`` appended, so
    the reminders job queues each reminder again for the new time under its plain key
    ``reminder:{event}:{member}:{offset}``."""
    prefix = f"reminder:{event.id}:"
    skip_pending(session, key_prefix=prefix)
    session.exec(
        sa.update(Notification)
        .where(col(Notification.key).startswith(prefix, autoescape=True),
               ~col(Notification.key).contains(":moved:", autoescape=True))
        .values(key=col(Notification.key).concat(f":moved:{now.astimezone(UTC).isoformat()}"))
        .execution_options(synchronize_session=False)
    )


def announce_event(session: Session, event: Event, *, channels: Sequence[str], language: str, zone: ZoneInfo,
                   now: datetime, changes: Sequence[str] = ()) -> int:
    """Queue an announcement of ``event`` (new, or changed: ``changes`` are lines saying what changed) to
    each of the community's announcement ``channels`` (``slack:C123``, ``wechat:123@chatroom`` or bare ids,
    :func:`bot.notifications.split_target`; an entry that names no platform is logged and skipped), with
    the RSVP buttons, in ``language`` (the caller's choice: the channels are read by many, so there is no
    one member's language to take).

    The key ``announce:{event}:{updated_at}:{platform}:{conversation}`` makes each version of the event
    announced once per channel. Returns how many announcements were queued.
    """
    summary = event_summary(session, event, language=language, zone=zone)
    if changes:
        head = tr(language, "✏️ Event changed:", "✏️ 活动有变动：")
        text = "\n".join([head, *changes, "", summary])
    else:
        text = tr(language, f"📅 New event!\n{summary}", f"📅 新活动！\n{summary}")
    reply = Reply(text=text, language=language, buttons=rsvp_buttons(event, language))
    version = event.updated_at.astimezone(UTC).isoformat()
    return _to_channels(session, event, channels, key=f"announce:{event.id}:{version}", reply=reply, now=now)


def announce_cancellation(session: Session, event: Event, *, channels: Sequence[str], language: str,
                          zone: ZoneInfo, now: datetime) -> int:
    """Queue ``#3 Title (when) was cancelled`` to each announcement channel (key
    ``cancelled:{event}:{platform}:{conversation}``); returns how many were queued."""
    when = format_when(event.starts_at, tz=zone, language=language)
    reply = Reply(text=tr(language, f"❌ Cancelled: #{event.id} {event.title} ({when}).",
                          f"❌ 活动已取消：#{event.id} {event.title}（{when}）。"), language=language)
    return _to_channels(session, event, channels, key=f"cancelled:{event.id}", reply=reply, now=now)


def _to_channels(session: Session, event: Event, channels: Sequence[str], *, key: str, reply: Reply,
                 now: datetime) -> int:
    queued = 0
    for entry in channels:
        target = split_target(entry.strip())
        if target is None:
            log.warning("announcement channel %r of community %s names no platform; skipped "
                        "(write slack:C123 or wechat:123@chatroom)", entry, event.community_id)
            continue
        platform, conversation = target
        queued += queue_notification(session, key=f"{key}:{platform}:{conversation}",
                                     community_id=event.community_id, kind="announcement", platform=platform,
                                     conversation=conversation, reply=reply, due_at=now)
    return queued


#: How many members the matcher is asked for when looking for members interested in a new event.
ALERT_CANDIDATES = 50


def interested_members(matcher: Matcher, event: Event, *, threshold: float | None) -> list[Match]:
    """The members whose profile matches ``event`` (its title and description), best first, as the matcher
    ranks them (``below_threshold`` set against ``threshold``; ``None``: the matcher's default). The
    matcher only ranks members who agreed to be suggested (``consent_suggest``).

    Raises whatever the matcher raises (a model that cannot load).
    """
    return matcher.search(community_id=event.community_id, query=f"{event.title}\n{event.description}",
                          kinds=["member"], top_k=ALERT_CANDIDATES, threshold=threshold)


def alert_interested_members(session: Session, event: Event, *, matches: Sequence[Match], language: str,
                             zone: ZoneInfo, now: datetime) -> int:
    """Tell members personally of a new event that matches their profile: of ``matches``
    (:func:`interested_members`), those at or above the threshold who opted in (``consent_event_alerts``),
    never the organiser. One direct message each, in their language (:func:`bot.members.member_language`;
    ``language``, the community's, is the fallback), key ``alert:{event}:{member}``. Returns how many were
    queued.
    """
    queued = 0
    for match in matches:
        member = session.get(Member, match.id)
        if (match.below_threshold or member is None or member.community_id != event.community_id
                or not member.consent_event_alerts or member.id == event.organiser_member_id):
            continue
        lang = member_language(member, language, session=session)
        summary = event_summary(session, event, language=lang, zone=member_zone(member, zone))
        text = tr(lang, f"📅 A new event that matches your interests:\n{summary}",
                  f"📅 有一个和你兴趣相符的新活动：\n{summary}")
        reply = Reply(text=text, language=lang, buttons=rsvp_buttons(event, lang))
        queued += queue_direct(session, key=f"alert:{event.id}:{member.id}", member=member,
                               kind="event_alert", reply=reply, due_at=now)
    return queued


def _answered(session: Session, event: Event) -> Sequence[Member]:
    """The members who answered yes, maybe or joined the waitlist of ``event``, in order of answer."""
    return session.exec(
        select(Member).join(Rsvp, col(Rsvp.member_id) == col(Member.id))
        .where(Rsvp.event_id == event.id, col(Rsvp.status).in_([GOING, MAYBE, WAITLIST]))
        .order_by(col(Rsvp.id))
    ).all()


def notify_changed(session: Session, event: Event, *, language: str, zone: ZoneInfo, now: datetime) -> int:
    """Tell every member who answered yes, maybe or joined the waitlist that ``event``'s time, place or
    title changed: the event as it is now, in their language and time zone (key
    ``changed:{event}:{updated_at}:{member}``: once per version of the event). Returns how many were
    queued."""
    version = event.updated_at.astimezone(UTC).isoformat()
    queued = 0
    for member in _answered(session, event):
        lang = member_language(member, language, session=session)
        summary = event_summary(session, event, language=lang, zone=member_zone(member, zone))
        text = tr(lang, f"✏️ An event you answered has changed:\n{summary}",
                  f"✏️ 你报名的活动有变动：\n{summary}")
        queued += queue_direct(session, key=f"changed:{event.id}:{version}:{member.id}", member=member,
                               kind="event_changed", reply=Reply(text=text, language=lang), due_at=now)
    return queued


def notify_cancelled(session: Session, event: Event, *, language: str, zone: ZoneInfo, now: datetime) -> int:
    """Tell every member who answered yes, maybe or joined the waitlist that ``event`` was cancelled (key
    ``cancelled:{event}:{member}``, in their language) and drop the event's reminders not sent yet (marked
    ``skipped``). Returns how many notices were queued."""
    rows = _answered(session, event)
    skip_pending(session, key_prefix=f"reminder:{event.id}:")
    queued = 0
    for member in rows:
        lang = member_language(member, language, session=session)
        when = format_when(event.starts_at, tz=member_zone(member, zone), language=lang)
        text = tr(lang, f"❌ #{event.id} {event.title} ({when}) was cancelled by the organiser. Sorry!",
                  f"❌ 很抱歉，#{event.id} {event.title}（{when}）已被组织者取消。")
        queued += queue_direct(session, key=f"cancelled:{event.id}:{member.id}", member=member,
                               kind="cancellation", reply=Reply(text=text, language=lang), due_at=now)
    return queued
