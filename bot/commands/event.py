"""``/event create|edit|cancel|show|list`` (``/活动 创建|修改|取消|详情``, ``/活动``) and event display.

Times are read and shown in the community's time zone (``ctx.settings.zone``) and stored as UTC. Only the
organiser or an admin may edit or cancel an event. An event is *past* once it has ended (its end, or its
start when it has no end, is before now).

What the commands queue (never send; :mod:`bot.events`, :mod:`bot.notifications`): a new event, and each
change of its title, time, place, capacity or description, is announced in the community's
``announce_channels`` in the community's language, with RSVP buttons; a new event is also told personally to
members who opted in to event alerts and whose profile matches it; raising the capacity promotes the
waitlist; a cancellation is told to everyone who answered yes, maybe or waited, and drops their reminders.
``--remind 24h,1h`` sets an event's own reminders (else the community's ``reminder_minutes``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.commands.context import CommandContext
from bot.commands.dates import looks_like_date_start, parse_when
from bot.commands.parsing import (
    Flag,
    ParsedArgs,
    Token,
    join_tokens,
    parse_args,
    parse_id,
    parse_positive_int,
)
from bot.commands.replies import say
from bot.errors import NotFoundError, PermissionDenied, UsageError
from bot.event_notices import (
    alert_interested_members,
    announce_cancellation,
    announce_event,
    interested_members,
    notify_cancelled,
    notify_changed,
    promote_waitlisted,
    retire_reminders,
    skip_pending,
)
from bot.events import (
    GOING,
    MAYBE,
    WAITLIST,
    event_line,
    event_summary,
    is_past,
    past_events,
    rsvp_buttons,
    upcoming_events,
)

# the RSVP buttons live in bot.events (notices use them too); still importable from here
from bot.events import RSVP_NO_ACTION as RSVP_NO_ACTION
from bot.events import RSVP_YES_ACTION as RSVP_YES_ACTION
from bot.i18n import tr
from bot.messages import Reply
from bot.models import Event, EventStatus, Member, Rsvp
from bot.reminder_offsets import format_offsets, parse_reminder_offsets, reminder_offsets
from bot.timefmt import format_when

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 300
UPCOMING_LIMIT = 20
PAST_LIMIT = 10
#: The largest ``--capacity`` (also the importers' limit, :data:`bot.importers.mapping.MAX_CAPACITY`).
MAX_CAPACITY = 100_000

_DETAIL_FLAGS = (
    Flag("end", ("until", "ends", "结束")),
    Flag("where", ("place", "location", "地点")),
    Flag("capacity", ("cap", "limit", "max", "人数", "名额")),
    Flag("desc", ("description", "描述", "说明")),
    Flag("remind", ("reminders", "reminder", "提醒")),
)
CREATE_FLAGS = _DETAIL_FLAGS
EDIT_FLAGS = (Flag("title", ("name", "标题")), Flag("when", ("date", "start", "时间")), *_DETAIL_FLAGS)
LIST_FLAGS = (Flag("past", ("history", "过去", "历史"), takes_value=False),)


# --- reading events ----------------------------------------------------------------------------------------

def find_event(ctx: CommandContext, id_text: str) -> Event:
    """The event of this community whose id ``id_text`` gives (``3`` or ``#3``).

    Raises:
        UsageError: ``id_text`` is not a number.
        NotFoundError: no such event in this community.
    """
    event_id = parse_id(id_text, what=tr(ctx.language, "The event ID", "活动编号"), language=ctx.language)
    event = ctx.session.get(Event, event_id) if event_id is not None else None
    if event is None or event.community_id != ctx.community.id:
        shown = str(event_id) if event_id is not None else _shown_number(id_text)  # beyond any id
        raise NotFoundError(tr(ctx.language, f"There is no event #{shown}. See /event list.",
                               f"没有编号为 #{shown} 的活动。发送 /活动 查看活动列表。"))
    return event


def _shown_number(text: str) -> str:
    """A number as typed, without ``#``, cut to a readable length."""
    digits = text.strip().lstrip("#＃")
    return digits if len(digits) <= 30 else f"{digits[:30]}…"


def rsvp_counts(ctx: CommandContext, event_ids: Iterable[int]) -> dict[int, Counter[str]]:
    """``{event id: Counter({"yes": n, "maybe": n, "no": n})}`` for the given events (missing = none)."""
    ids = list(event_ids)
    counts: dict[int, Counter[str]] = {i: Counter() for i in ids}
    if ids:
        rows = ctx.session.exec(
            select(Rsvp.event_id, Rsvp.status, sa.func.count()).where(col(Rsvp.event_id).in_(ids))
            .group_by(col(Rsvp.event_id), col(Rsvp.status))
        ).all()
        for event_id, status, n in rows:
            counts[event_id][status] = n
    return counts


#: The answers whose members ``/event show`` names, with their English and Chinese headings.
_NAMED_STATUSES = ((GOING, "Going", "参加"), (MAYBE, "Maybe", "待定"), (WAITLIST, "Waitlist", "候补"))


def event_details(ctx: CommandContext, event: Event) -> str:
    """Several lines: :func:`bot.events.event_summary` (title, when, where, capacity, organiser,
    description), then the reminders, the RSVP counts, who is going, maybe or waiting, and whether it was
    cancelled."""
    lang = ctx.language
    lines = [event_summary(ctx.session, event, language=lang, zone=ctx.settings.zone)]
    if event.status != EventStatus.CANCELLED and not is_past(event, ctx.now):
        offsets = format_offsets(reminder_offsets(event, ctx.settings.reminder_minutes), lang)
        lines.append(tr(lang, f"Reminders to those going: {offsets}", f"提醒报名者：{offsets}"))
    assert event.id is not None
    counts = rsvp_counts(ctx, [event.id])[event.id]
    rsvps = tr(lang, f"RSVPs: {counts[GOING]} going, {counts[MAYBE]} maybe, {counts['no']} not going",
               f"报名：{counts[GOING]} 人参加，{counts[MAYBE]} 人待定，{counts['no']} 人不参加")
    if event.capacity or counts[WAITLIST]:
        rsvps += tr(lang, f", {counts[WAITLIST]} on the waitlist", f"，{counts[WAITLIST]} 人候补")
    lines.append(rsvps)
    for status, en, zh in _NAMED_STATUSES:
        names = _attendee_names(ctx, event.id, status)
        if names:
            lines.append(tr(lang, f"{en}: {', '.join(names)}", f"{zh}：{'、'.join(names)}"))
    if event.status == EventStatus.CANCELLED:
        lines.append(tr(lang, "This event was cancelled.", "此活动已取消。"))
    return "\n".join(lines)


def _attendee_names(ctx: CommandContext, event_id: int, status: str) -> list[str]:
    rows = ctx.session.exec(
        select(Member.display_name).join(Rsvp, col(Rsvp.member_id) == col(Member.id))
        .where(Rsvp.event_id == event_id, Rsvp.status == status)
        .order_by(col(Rsvp.updated_at) if status == WAITLIST else col(Rsvp.created_at), col(Rsvp.id))
    ).all()
    return list(rows)


# --- reading arguments -------------------------------------------------------------------------------------

def _title_and_when(ctx: CommandContext, positionals: Sequence[Token]) -> tuple[str, str]:
    """Split ``"TITLE" DATE [TIME]``; an unquoted title ends where a readable date begins."""
    lang = ctx.language
    if not positionals or not positionals[0].text.strip():
        raise UsageError(tr(lang, "The event needs a title.", "活动需要一个标题。"))
    first = positionals[0]
    if first.quoted or len(positionals) == 1:
        if len(positionals) == 1:
            raise UsageError(tr(lang, "The event needs a date, e.g. 2027-05-10 18:00 or 'next Friday 7pm'.",
                                "活动需要日期，例如 2027-05-10 18:00 或 下周五晚上7点。"))
        return first.text, join_tokens(positionals[1:])
    for i in range(1, len(positionals)):
        if looks_like_date_start(positionals[i].text):
            when = join_tokens(positionals[i:])
            try:
                parse_when(when, tz=ctx.settings.zone, now=ctx.now, allow_past=True)
            except UsageError:
                continue
            return join_tokens(positionals[:i]), when
    raise UsageError(tr(lang, "I can't tell where the title ends and the date begins; quote the title.",
                        "分不清标题和日期，请把标题放在引号里。"))


def _title(ctx: CommandContext, text: str) -> str:
    title = text.strip()
    if not title:
        raise UsageError(tr(ctx.language, "The event needs a title.", "活动需要一个标题。"))
    if len(title) > MAX_TITLE_CHARS:
        raise UsageError(tr(ctx.language, f"The title is too long (at most {MAX_TITLE_CHARS} characters).",
                            f"标题太长了（最多 {MAX_TITLE_CHARS} 个字符）。"))
    return title


def _when(ctx: CommandContext, text: str) -> datetime:
    return parse_when(text, tz=ctx.settings.zone, now=ctx.now, language=ctx.language)


def _end(ctx: CommandContext, text: str, starts: datetime) -> datetime:
    """``--end``: read relative to the start, so a bare ``21:00`` falls on the event's day."""
    ends = parse_when(text, tz=ctx.settings.zone, now=starts, language=ctx.language, allow_past=True)
    if ends <= starts:
        raise UsageError(tr(ctx.language, "The end must be after the start.", "结束时间必须晚于开始时间。"))
    return ends


def _capacity(ctx: CommandContext, text: str) -> int:
    return parse_positive_int(text, what=tr(ctx.language, "Capacity", "人数上限"), language=ctx.language,
                              maximum=MAX_CAPACITY)


def _reminders(ctx: CommandContext, text: str) -> list[int]:
    """``--remind 24h,1h`` as minutes before the start (``none``: no reminders)."""
    try:
        return parse_reminder_offsets(text)
    except ValueError as exc:
        bad = str(exc.args[0])[:30]
        raise UsageError(tr(ctx.language, f"{bad!r} is not a reminder time: write e.g. --remind 24h,1h "
                            "(also 30m, 2d; at most 30 days; or none).",
                            f"「{bad}」不是有效的提醒时间：例如 --remind 1天,1小时"
                            "（也可以写 30m、2d，最多 30 天；或 none 表示不提醒）。")) from exc


def _require_organiser(ctx: CommandContext, event: Event) -> None:
    if not ctx.is_admin and event.organiser_member_id != ctx.member.id:
        raise PermissionDenied(tr(ctx.language, f"Only the organiser or an admin may change #{event.id}.",
                                  f"只有组织者或管理员可以修改活动 #{event.id}。"))


def _event_id_only(ctx: CommandContext, args: str) -> Event:
    positionals = parse_args(args, language=ctx.language).positionals
    if len(positionals) != 1:
        raise UsageError(tr(ctx.language, "Give one event ID.", "请给出一个活动编号。"))
    return find_event(ctx, positionals[0].text)


# --- handlers ----------------------------------------------------------------------------------------------

def create_event(ctx: CommandContext, args: str) -> list[Reply]:
    """``/event create "TITLE" DATE [TIME] [--end ...] [--where PLACE] [--capacity N] [--desc TEXT]
    [--remind 24h,1h]``: stores the event, queues its announcement and the personal alerts."""
    parsed = parse_args(args, flags=CREATE_FLAGS, language=ctx.language)
    title_text, when_text = _title_and_when(ctx, parsed.positionals)
    title = _title(ctx, title_text)
    starts = _when(ctx, when_text)
    end_text, capacity_text, remind = parsed.value("end"), parsed.value("capacity"), parsed.value("remind")
    assert ctx.community.id is not None
    event = Event(
        community_id=ctx.community.id, title=title, description=parsed.value("desc") or "",
        starts_at=starts, ends_at=_end(ctx, end_text, starts) if end_text else None,
        timezone=ctx.settings.timezone, all_day=False, place=parsed.value("where") or "",
        capacity=_capacity(ctx, capacity_text) if capacity_text else None,
        reminders=_reminders(ctx, remind) if remind is not None else None,
        organiser_member_id=ctx.member.id, source="command", created_at=ctx.now, updated_at=ctx.now,
    )
    ctx.session.add(event)
    ctx.session.flush()
    notes = _notes(ctx, announced=_announce(ctx, event), alerted=_alert(ctx, event))
    details = event_details(ctx, event)
    return [say(ctx, f"Event created.\n{details}{notes}", f"活动已创建。\n{details}{notes}",
                buttons=rsvp_buttons(event, ctx.language))]


def edit_event(ctx: CommandContext, args: str) -> list[Reply]:
    """``/event edit ID [--title ...] [--when ...] [--end ...] [--where ...] [--capacity N] [--desc ...]
    [--remind ...]``: changes the event, re-announces what changed, promotes the waitlist into new seats
    and re-plans reminders not sent yet when the time or the reminders change."""
    lang = ctx.language
    parsed = parse_args(args, flags=EDIT_FLAGS, language=lang)
    if len(parsed.positionals) != 1:
        raise UsageError(tr(lang, "Give the event ID, then what to change.",
                            "请先给出活动编号，再给出要修改的内容。"))
    if not parsed.options:
        raise UsageError(tr(lang, "Nothing to change: give --title, --when, --where, --capacity, --desc or "
                            "--remind.",
                            "没有要修改的内容：请使用 --title、--when、--where、--capacity、--desc "
                            "或 --remind。"))
    event = find_event(ctx, parsed.positionals[0].text)
    _require_organiser(ctx, event)
    before = _snapshot(event)
    _apply_edit(ctx, event, parsed)
    ctx.session.add(event)
    ctx.session.flush()
    if event.starts_at != before["starts_at"]:
        retire_reminders(ctx.session, event, now=ctx.now)  # the reminders job plans them for the new time
    elif event.reminders != before["reminders"]:
        skip_pending(ctx.session, key_prefix=f"reminder:{event.id}:")  # sent ones are never sent again
    promoted = promote_waitlisted(ctx.session, event, now=ctx.now, language=ctx.settings.language,
                                  zone=ctx.settings.zone) if event.capacity != before["capacity"] else []
    changes = _changes(ctx, before, event)
    announced = _announce(ctx, event, changes) if changes else 0
    if changes and any(getattr(event, f) != before[f] for f in _ATTENDEE_FIELDS):
        notify_changed(ctx.session, event, language=ctx.settings.language, zone=ctx.settings.zone,
                       now=ctx.now)
    notes = _notes(ctx, announced=announced, promoted=len(promoted))
    details = event_details(ctx, event)
    return [say(ctx, f"Event updated.\n{details}{notes}", f"活动已更新。\n{details}{notes}",
                buttons=rsvp_buttons(event, lang))]


def _apply_edit(ctx: CommandContext, event: Event, parsed: ParsedArgs) -> None:
    """Set the fields ``parsed`` gives on ``event`` (and its ``updated_at``).

    Raises:
        UsageError: a value is wrong (a date in the past, an end before the start, a bad capacity).
    """
    lang = ctx.language
    title, when, end = parsed.value("title"), parsed.value("when"), parsed.value("end")
    starts = _when(ctx, when) if when else event.starts_at
    ends = event.ends_at
    if end:
        ends = _end(ctx, end, starts)
    elif when and ends is not None:
        try:
            ends = starts + (ends - event.starts_at)  # keep the duration
            ends.astimezone(UTC)  # stored as UTC
        except OverflowError as exc:
            raise UsageError(tr(lang, "With its duration the event would end after the year 9999; "
                                "give --end.",
                                "按原来的时长，活动会在 9999 年之后结束；请用 --end 给出结束时间。")) from exc
    capacity, remind = parsed.value("capacity"), parsed.value("remind")
    new_capacity = _capacity(ctx, capacity) if capacity else event.capacity
    event.reminders = _reminders(ctx, remind) if remind is not None else event.reminders
    event.title = _title(ctx, title) if title is not None else event.title
    event.starts_at, event.ends_at, event.capacity = starts, ends, new_capacity
    if when or end:  # read in the community's zone, always with a clock time (18:00 by default)
        event.timezone, event.all_day = ctx.settings.timezone, False
    event.place = parsed.value("where") or event.place
    event.description = parsed.value("desc") or event.description
    event.updated_at = ctx.now


#: The fields of an event that members see in its announcement (a change of them is announced).
_ANNOUNCED_FIELDS = ("title", "starts_at", "ends_at", "place", "capacity", "description")
#: The fields whose change every member who answered is told of personally (where and when to be).
_ATTENDEE_FIELDS = ("title", "starts_at", "ends_at", "place")


def _snapshot(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in (*_ANNOUNCED_FIELDS, "reminders")}


def _changes(ctx: CommandContext, before: dict[str, Any], event: Event) -> list[str]:
    """What changed among the announced fields, one line each, in the community's language:
    ``Where: Room 3 → Hall``; ``[]`` when nothing did, or the event is cancelled or over (not announced)."""
    lang, zone = ctx.settings.language, ctx.settings.zone
    if event.status == EventStatus.CANCELLED or is_past(event, ctx.now):
        return []
    labels = {"title": ("Title", "标题"), "starts_at": ("When", "时间"), "ends_at": ("Ends", "结束"),
              "place": ("Where", "地点"), "capacity": ("Capacity", "人数上限")}

    def shown(value: Any) -> str:
        if isinstance(value, datetime):
            return format_when(value, tz=zone, language=lang)
        return str(value) if value else tr(lang, "none", "无")

    lines = []
    for name in _ANNOUNCED_FIELDS:
        old, new = before[name], getattr(event, name)
        if old == new:
            continue
        if name == "description":
            lines.append(tr(lang, "The description was updated.", "活动说明已更新。"))
            continue
        en, zh = labels[name]
        lines.append(tr(lang, f"{en}: {shown(old)} → {shown(new)}", f"{zh}：{shown(old)} → {shown(new)}"))
    return lines


def _announce(ctx: CommandContext, event: Event, changes: Sequence[str] = ()) -> int:
    """Queue the announcement of ``event`` (or of its ``changes``) to the announcement channels."""
    settings = ctx.settings
    return announce_event(ctx.session, event, channels=settings.announce_channels, language=settings.language,
                          zone=settings.zone, now=ctx.now, changes=changes)


def _alert(ctx: CommandContext, event: Event) -> int:
    """Queue the personal alerts of a new event; a matcher that fails is logged and alerts nobody (the event
    stands)."""
    if ctx.matcher is None:
        return 0
    try:
        matches = interested_members(ctx.matcher, event, threshold=ctx.settings.match_threshold)
    except Exception:  # noqa: BLE001 - alerts are a courtesy; the event is created all the same
        log.exception("could not look for members interested in event %s", event.id)
        return 0
    return alert_interested_members(ctx.session, event, matches=matches, language=ctx.settings.language,
                                    zone=ctx.settings.zone, now=ctx.now)


def _notes(ctx: CommandContext, *, announced: int = 0, alerted: int = 0, promoted: int = 0) -> str:
    """Lines telling the organiser what was queued (empty when nothing was)."""
    notes = []
    if announced:
        notes.append(tr(ctx.language, f"📣 Announced in {announced} channel(s)/group(s).",
                        f"📣 已在 {announced} 个频道/群中公告。"))
    if alerted:
        notes.append(tr(ctx.language, f"🔔 {alerted} member(s) with matching interests will be told.",
                        f"🔔 将私信通知 {alerted} 位兴趣相符的成员。"))
    if promoted:
        notes.append(tr(ctx.language, f"🎉 {promoted} member(s) moved up from the waitlist and will be told.",
                        f"🎉 {promoted} 位候补成员已转为正式报名，并会收到通知。"))
    return "".join("\n" + note for note in notes)


def cancel_event(ctx: CommandContext, args: str) -> list[Reply]:
    """``/event cancel ID``: marks the event cancelled (organiser or admin only), tells everyone who answered
    yes, maybe or waited (in their language), announces it where events are announced, and drops its
    reminders not sent yet."""
    event = _event_id_only(ctx, args)
    _require_organiser(ctx, event)
    if event.status == EventStatus.CANCELLED:
        return [say(ctx, f"Event #{event.id} {event.title} was already cancelled.",
                    f"活动 #{event.id} {event.title} 已经取消过了。")]
    event.status = EventStatus.CANCELLED
    event.updated_at = ctx.now
    ctx.session.add(event)
    ctx.session.flush()
    assert event.id is not None
    settings = ctx.settings
    notify_cancelled(ctx.session, event, language=settings.language, zone=settings.zone, now=ctx.now)
    if not is_past(event, ctx.now):
        announce_cancellation(ctx.session, event, channels=settings.announce_channels,
                              language=settings.language, zone=settings.zone, now=ctx.now)
    going = rsvp_counts(ctx, [event.id])[event.id][GOING]
    return [say(ctx, f"Cancelled event #{event.id} {event.title}. {_had_said_going_en(going)}",
                f"已取消活动 #{event.id} {event.title}。{_had_said_going_zh(going)}")]


def _had_said_going_en(going: int) -> str:
    if going == 0:
        return "Nobody had said they were going."
    return f"{going} {'person' if going == 1 else 'people'} had said they were going."


def _had_said_going_zh(going: int) -> str:
    return "之前没有人报名。" if going == 0 else f"之前有 {going} 人报名。"


def show_event(ctx: CommandContext, args: str) -> list[Reply]:
    """``/event show ID``: details, RSVP counts and who is going, with RSVP buttons."""
    event = _event_id_only(ctx, args)
    details = event_details(ctx, event)
    buttons = () if is_past(event, ctx.now) else rsvp_buttons(event, ctx.language)
    return [Reply(text=details, language=ctx.language, buttons=buttons)]


def list_events(ctx: CommandContext, args: str) -> list[Reply]:
    """``/event list [--past]``: upcoming scheduled events by start time, or the latest past ones."""
    parsed = parse_args(args, flags=LIST_FLAGS, language=ctx.language)
    if parsed.positionals:
        raise UsageError(tr(ctx.language, f"Unexpected {join_tokens(parsed.positionals)!r}.",
                            f"多余的内容：「{join_tokens(parsed.positionals)}」。"))
    past = bool(parsed.options.get("past"))
    assert ctx.community.id is not None
    if past:
        events = past_events(ctx.session, community_id=ctx.community.id, now=ctx.now, limit=PAST_LIMIT)
    else:
        events = upcoming_events(ctx.session, community_id=ctx.community.id, now=ctx.now,
                                 limit=UPCOMING_LIMIT)
    if not events:
        if past:
            return [say(ctx, "No past events yet.", "还没有已结束的活动。")]
        return [say(ctx, "No upcoming events. Create one with /event create.",
                    "近期没有活动。可以用 /活动 创建 发起一个。")]
    counts = rsvp_counts(ctx, [e.id for e in events if e.id is not None])
    lines = [event_line(e, tz=ctx.settings.zone, language=ctx.language, counts=counts[e.id])
             for e in events if e.id is not None]
    head = (tr(ctx.language, "Past events:", "已结束的活动：") if past
            else tr(ctx.language, "Upcoming events:", "近期活动："))
    limit = PAST_LIMIT if past else UPCOMING_LIMIT
    if len(events) >= limit:
        more = _count_events(ctx, past=past) - len(events)
        if more > 0:
            lines.append(tr(ctx.language, f"… and {more} more.", f"……另有 {more} 个活动未列出。"))
    return [Reply(text="\n".join([head, *lines]), language=ctx.language)]


def _count_events(ctx: CommandContext, *, past: bool) -> int:
    """How many scheduled events :func:`bot.events.past_events` (``past``) or
    :func:`bot.events.upcoming_events` would list without a limit."""
    finish = sa.func.coalesce(col(Event.ends_at), col(Event.starts_at))
    query = select(sa.func.count()).select_from(Event).where(
        Event.community_id == ctx.community.id, Event.status == EventStatus.SCHEDULED,
        finish < ctx.now if past else finish >= ctx.now,
    )
    return int(ctx.session.exec(query).one())
