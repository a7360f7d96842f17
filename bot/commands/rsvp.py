"""``/rsvp ID [yes|no|maybe]`` (``/报名 ID``, ``/取消报名 ID``): a member's answer to an event.

Platforms without buttons (WeChat groups) offer short reply codes instead (``报名 3``, ``rsvp 3 no``):
:func:`reply_code` writes them, :func:`command_for_reply_code` reads them back.

One row per (event, member): answering again updates it, and answering the same again changes nothing
(not even a place in line). A "yes" to a full event puts the member on its waitlist (the reply says their
place in line); a member going who says no or maybe frees their seat for the first in line, who is told by
a direct message (:func:`bot.event_notices.promote_waitlisted`); a member waiting who says no or maybe
leaves the line. Nobody can answer a cancelled or past event. Reminders of the event not sent yet to a
member who is no longer going are dropped.
"""

from __future__ import annotations

import re
import unicodedata

from sqlmodel import select

from bot.commands.context import CommandContext
from bot.commands.event import RSVP_NO_ACTION, RSVP_YES_ACTION, find_event
from bot.commands.parsing import parse_args
from bot.commands.replies import say
from bot.errors import UsageError
from bot.event_notices import promote_waitlisted, skip_pending
from bot.events import (
    GOING,
    MAYBE,
    NOT_GOING,
    WAITLIST,
    going_count,
    has_free_seat,
    is_past,
    waitlist_position,
)
from bot.i18n import tr
from bot.messages import Reply
from bot.models import Event, EventStatus, Rsvp
from bot.timefmt import format_when

YES, NO = GOING, NOT_GOING

_ANSWERS = {
    "yes": YES, "y": YES, "going": YES, "go": YES, "是": YES, "去": YES, "参加": YES, "报名": YES,
    "no": NO, "n": NO, "not": NO, "不": NO, "不去": NO, "否": NO, "取消": NO,
    "maybe": MAYBE, "m": MAYBE, "可能": MAYBE, "待定": MAYBE, "也许": MAYBE,
}


def rsvp(ctx: CommandContext, args: str) -> list[Reply]:
    """``/rsvp ID [yes|no|maybe]`` (default ``yes``; Chinese answers 去/不去/待定 too)."""
    words = [t.text for t in parse_args(args, language=ctx.language).positionals]
    if not words or len(words) > 2:
        raise UsageError(tr(ctx.language, "Give the event ID, then yes, no or maybe.",
                            "请给出活动编号，以及 yes / no / maybe。"))
    answer = _ANSWERS.get(words[1].lower()) if len(words) == 2 else YES
    if answer is None:
        raise UsageError(tr(ctx.language, f"Answer yes, no or maybe, not {words[1]!r}.",
                            f"请回答 yes、no 或 maybe，而不是「{words[1]}」。"))
    return [answer_event(ctx, find_event(ctx, words[0]), answer)]


def unrsvp(ctx: CommandContext, args: str) -> list[Reply]:
    """``/取消报名 ID``: the same as ``/rsvp ID no``."""
    words = [t.text for t in parse_args(args, language=ctx.language).positionals]
    if len(words) != 1:
        raise UsageError(tr(ctx.language, "Give one event ID.", "请给出一个活动编号。"))
    return [answer_event(ctx, find_event(ctx, words[0]), NO)]


def answer_event(ctx: CommandContext, event: Event, answer: str) -> Reply:
    """Record ``ctx.member``'s ``answer`` (yes/no/maybe) to ``event`` and say what happened.

    A ``yes`` to a full event is stored as ``waitlist``; a seat given up goes to the first in line. A
    cancelled or past event gets a reply saying so and nothing is stored.
    """
    assert event.id is not None and ctx.member.id is not None
    name = f"#{event.id} {event.title}"
    if event.status == EventStatus.CANCELLED:
        return say(ctx, f"{name} was cancelled.", f"{name} 已取消。")
    if is_past(event, ctx.now):
        return say(ctx, f"{name} has already taken place.", f"{name} 已经结束了。")
    row = ctx.session.exec(
        select(Rsvp).where(Rsvp.event_id == event.id, Rsvp.member_id == ctx.member.id)
    ).first()
    before = row.status if row is not None else None
    status = _seat(ctx, event, before) if answer == YES else answer
    if status != before:
        row = row or Rsvp(event_id=event.id, member_id=ctx.member.id, created_at=ctx.now)
        row.status, row.updated_at = status, ctx.now
        ctx.session.add(row)
        ctx.session.flush()
    promoted = []
    if before == YES and status != YES:
        skip_pending(ctx.session, key_prefix=f"reminder:{event.id}:{ctx.member.id}:")
        promoted = promote_waitlisted(ctx.session, event, now=ctx.now, language=ctx.settings.language,
                                      zone=ctx.settings.zone)
    return _answered(ctx, event, status, before=before, gave_seat=bool(promoted))


def _seat(ctx: CommandContext, event: Event, before: str | None) -> str:
    """What a ``yes`` becomes: ``yes`` for a member going already or when a seat is free, else
    ``waitlist`` (a member already waiting keeps their place)."""
    if before == YES or (before != WAITLIST and has_free_seat(ctx.session, event)):
        return YES
    return WAITLIST


def _answered(ctx: CommandContext, event: Event, status: str, *, before: str | None,
              gave_seat: bool) -> Reply:
    """The reply to an answer now stored as ``status`` (``before``: the answer it replaced)."""
    assert event.id is not None
    name = f"#{event.id} {event.title}"
    when = format_when(event.starts_at, tz=ctx.settings.zone, language=ctx.language)
    if status == YES:
        going = going_count(ctx.session, event.id)
        seats = f"{going}/{event.capacity}" if event.capacity else str(going)
        return say(ctx, f"You're going to {name} ({when}). {seats} going.",
                   f"已报名 {name}，时间 {when}。目前 {seats} 人报名。")
    if status == WAITLIST:
        return _waiting(ctx, event, already=before == WAITLIST)
    left = tr(ctx.language, " You've left the waitlist.", "你已退出候补名单。") if before == WAITLIST else ""
    passed = tr(ctx.language, " Your place goes to the next person on the waitlist.",
                "你的名额将让给候补名单上的下一位。") if gave_seat else ""
    if status == MAYBE:
        return say(ctx, f"Marked as maybe for {name} ({when}).{left}{passed}",
                   f"已将 {name} 标记为待定，时间 {when}。{left}{passed}")
    return say(ctx, f"OK, you're not going to {name}.{left}{passed}",
               f"好的，已取消 {name} 的报名。{left}{passed}")


def _waiting(ctx: CommandContext, event: Event, *, already: bool) -> Reply:
    """The reply to a ``yes`` that is on the waitlist: the place in line."""
    assert event.id is not None and ctx.member.id is not None
    name = f"#{event.id} {event.title}"
    place = waitlist_position(ctx.session, event.id, ctx.member.id)
    if already:
        return say(ctx, f"You're already on the waitlist for {name}: number {place} in line.",
                   f"你已在 {name} 的候补名单上，排第 {place} 位。")
    full = f"{going_count(ctx.session, event.id)}/{event.capacity}"
    return say(ctx, f"{name} is full ({full}), so you're on the waitlist: number {place} in line. "
               "I'll tell you if a place opens up.",
               f"{name} 已满（{full}），你已进入候补名单，排第 {place} 位。有空位时我会通知你。")


def button_command(action: str, value: str) -> str | None:
    """The command text an RSVP button stands for (``rsvp``, ``3`` -> ``/rsvp 3 yes``), else ``None``.

    Adapters that receive a button click can hand this text to :func:`bot.commands.run_command`.
    """
    answers = {RSVP_YES_ACTION: YES, RSVP_NO_ACTION: NO}
    if action not in answers or not value.strip().isdigit():
        return None
    return f"/rsvp {value.strip()} {answers[action]}"


#: A whole message that is an RSVP reply code: ``报名 3``, ``报名3``, ``参加 #3``, ``rsvp 3``, ``RSVP 3 no``,
#: ``不去 3``, ``取消报名 3``. Only a message that is nothing but the code counts (``+1`` or ``3`` alone never
#: do: people write those in group chats all the time).
_REPLY_CODE = re.compile(
    r"^\s*(?:(?P<yes>报名|参加|rsvp)|(?P<no>不去|取消报名))\s*#?(?P<id>\d{1,9})"
    r"(?:\s+(?P<answer>yes|no|maybe|去|不去|待定))?\s*[。.!！]?\s*$",
    re.IGNORECASE,
)


def reply_code(action: str, value: str, *, language: str) -> str | None:
    """The short text a member can send instead of pressing an RSVP button, on platforms without buttons
    (WeChat groups): ``报名 3`` / ``不去 3`` in Chinese, ``rsvp 3`` / ``rsvp 3 no`` in English. ``None`` for
    a button that is not an RSVP. :func:`command_for_reply_code` reads it back."""
    if action not in (RSVP_YES_ACTION, RSVP_NO_ACTION) or not value.strip().isdigit():
        return None
    event_id = value.strip()
    if action == RSVP_YES_ACTION:
        return tr(language, f"rsvp {event_id}", f"报名 {event_id}")
    return tr(language, f"rsvp {event_id} no", f"不去 {event_id}")


def command_for_reply_code(text: str) -> str | None:
    """The command a whole-message RSVP reply code stands for, in the code's language (so is the answer):
    ``报名 3`` -> ``/报名 3``, ``不去 3`` -> ``/取消报名 3``, ``报名 3 待定`` -> ``/报名 3 待定``,
    ``rsvp 3 no`` -> ``/rsvp 3 no``; ``None`` for any other text."""
    match = _REPLY_CODE.match(unicodedata.normalize("NFKC", text))
    if match is None:
        return None
    event_id = match.group("id")
    chinese = not (match.group("yes") or "").isascii()
    if match.group("no"):
        return f"/取消报名 {event_id}"
    answer = _ANSWERS.get((match.group("answer") or "yes").lower(), YES)
    if chinese:
        return f"/报名 {event_id}" + {YES: "", NO: " 不去", MAYBE: " 待定"}[answer]
    return f"/rsvp {event_id} {answer}"
