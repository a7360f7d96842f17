"""Events beyond one command: queries, RSVP seats and the waitlist, reminder offsets, and the notices the
bot queues about events (announcements, personal alerts, promotions off the waitlist, cancellations).

An event is *over* when its end (or, without one, its start) is before now; cancelled events are never
upcoming. Notices are never sent from here: they are queued as :class:`bot.models.Notification` rows under
keys that name them once (:mod:`bot.notifications`), and the dispatcher of the scheduler sends them.

Seats: an event with a ``capacity`` seats that many ``yes`` answers; a ``yes`` beyond it is stored as
``waitlist``, in line by the time of the answer (``Rsvp.updated_at``). When a seat frees up (a member
going says no or maybe, or the capacity is raised), :func:`promote_waitlisted` gives it to the first in line
and queues them a direct message. Lowering the capacity never takes a seat away from anyone.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.i18n import tr
from bot.language import SUPPORTED_LANGUAGES, language_code
from bot.messages import Button, Match, Reply
from bot.models import Event, EventStatus, Member, Notification, NotificationStatus, Rsvp
from bot.notifications import queue_direct, queue_notification, split_target
from bot.ports import Matcher
from bot.timefmt import format_event_when, format_when

log = logging.getLogger(__name__)

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


# --- reminder offsets ---------------------------------------------------------------------------------------

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


# --- readers --------------------------------------------------------------------------------------------

_LANGUAGE_SPLIT = re.compile(r"[,，、;；/|]+")


def member_language(member: Member, default: str) -> str:
    """The language to write to ``member`` in: the first language of their profile when the bot writes it
    (``中文, English`` -> ``zh``), else ``default`` (the community's)."""
    first = _LANGUAGE_SPLIT.split(member.languages.strip(), maxsplit=1)[0]
    code = language_code(first)
    return code if code in SUPPORTED_LANGUAGES else default


def member_zone(member: Member, default: ZoneInfo) -> ZoneInfo:
    """The time zone to show times to ``member`` in: their profile's, when it is an IANA name, else
    ``default`` (the community's)."""
    if member.timezone.strip():
        try:
            return ZoneInfo(member.timezone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default


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


def promote_waitlisted(session: Session, event: Event, *, now: datetime, language: str,
                       zone: ZoneInfo) -> list[Member]:
    """Give free seats of ``event`` to the first in line, while there are seats and people waiting; each is
    set to ``yes`` (answered ``now``: reminders due before it are not sent to them) and told by a queued
    direct message in their language (``language``, the community's, is the fallback) under the key
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
    lang = member_language(member, language)
    when = format_when(event.starts_at, tz=member_zone(member, zone), language=lang)
    text = tr(lang, f"🎉 A place opened up: you're now going to #{event.id} {event.title} ({when}). "
                    "If you can't make it after all, say so, and the next person in line gets the place.",
              f"🎉 有空位了：你已从候补转为正式报名 #{event.id} {event.title}（{when}）。"
              "如果去不了，请告诉我，名额会让给下一位候补。")
    queue_direct(session, key=f"{prefix}{int(earlier) + 1}", member=member, kind="promotion",
                 reply=Reply(text=text, language=lang, buttons=cant_go_button(event, lang)), due_at=now)


# --- notices --------------------------------------------------------------------------------------------

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
    the RSVP buttons, in ``language`` (the community's).

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
    never the organiser. One direct message each, in their language (``language``, the community's, is
    the fallback), key ``alert:{event}:{member}``. Returns how many were queued.
    """
    queued = 0
    for match in matches:
        member = session.get(Member, match.id)
        if (match.below_threshold or member is None or member.community_id != event.community_id
                or not member.consent_event_alerts or member.id == event.organiser_member_id):
            continue
        lang = member_language(member, language)
        summary = event_summary(session, event, language=lang, zone=member_zone(member, zone))
        text = tr(lang, f"📅 A new event that matches your interests:\n{summary}",
                  f"📅 有一个和你兴趣相符的新活动：\n{summary}")
        reply = Reply(text=text, language=lang, buttons=rsvp_buttons(event, lang))
        queued += queue_direct(session, key=f"alert:{event.id}:{member.id}", member=member,
                               kind="event_alert", reply=reply, due_at=now)
    return queued


def notify_cancelled(session: Session, event: Event, *, language: str, zone: ZoneInfo, now: datetime) -> int:
    """Tell every member who answered yes, maybe or joined the waitlist that ``event`` was cancelled (key
    ``cancelled:{event}:{member}``, in their language) and drop the event's reminders not sent yet (marked
    ``skipped``). Returns how many notices were queued."""
    rows = session.exec(
        select(Member).join(Rsvp, col(Rsvp.member_id) == col(Member.id))
        .where(Rsvp.event_id == event.id, col(Rsvp.status).in_([GOING, MAYBE, WAITLIST]))
        .order_by(col(Rsvp.id))
    ).all()
    skip_pending(session, key_prefix=f"reminder:{event.id}:")
    queued = 0
    for member in rows:
        lang = member_language(member, language)
        when = format_when(event.starts_at, tz=member_zone(member, zone), language=lang)
        text = tr(lang, f"❌ #{event.id} {event.title} ({when}) was cancelled by the organiser. Sorry!",
                  f"❌ 很抱歉，#{event.id} {event.title}（{when}）已被组织者取消。")
        queued += queue_direct(session, key=f"cancelled:{event.id}:{member.id}", member=member,
                               kind="cancellation", reply=Reply(text=text, language=lang), due_at=now)
    return queued
