"""``/rsvp ID [yes|no|maybe]`` (``/报名 ID``, ``/取消报名 ID``): a member's answer to an event.

Platforms without buttons (WeChat groups) offer short reply codes instead (``报名 3``, ``rsvp 3 no``):
:func:`reply_code` writes them, :func:`command_for_reply_code` reads them back.

One row per (event, member): answering again updates it. A "yes" is refused when the event is full
(a waitlist is a later feature); nobody can answer a cancelled or past event.
"""

from __future__ import annotations

import re
import unicodedata

from sqlmodel import select

from bot.commands.context import CommandContext
from bot.commands.event import RSVP_NO_ACTION, RSVP_YES_ACTION, find_event, rsvp_counts
from bot.commands.parsing import parse_args
from bot.commands.replies import say
from bot.errors import UsageError
from bot.events import is_past
from bot.i18n import tr
from bot.messages import Reply
from bot.models import Event, EventStatus, Rsvp
from bot.timefmt import format_when

YES, NO, MAYBE = "yes", "no", "maybe"

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

    A full, cancelled or past event gets a reply saying so and nothing is stored.
    """
    assert event.id is not None and ctx.member.id is not None
    name = f"#{event.id} {event.title}"
    if event.status == EventStatus.CANCELLED:
        return say(ctx, f"{name} was cancelled.", f"{name} 已取消。")
    if is_past(event, ctx.now):
        return say(ctx, f"{name} has already taken place.", f"{name} 已经结束了。")
    existing = ctx.session.exec(
        select(Rsvp).where(Rsvp.event_id == event.id, Rsvp.member_id == ctx.member.id)
    ).first()
    going = rsvp_counts(ctx, [event.id])[event.id][YES]
    already_going = existing is not None and existing.status == YES
    if answer == YES and event.capacity and going >= event.capacity and not already_going:
        return say(ctx, f"Sorry, {name} is full ({going}/{event.capacity}).",
                   f"抱歉，{name} 已满（{going}/{event.capacity}）。")
    if existing is None:
        existing = Rsvp(event_id=event.id, member_id=ctx.member.id, created_at=ctx.now)
    existing.status, existing.updated_at = answer, ctx.now
    ctx.session.add(existing)
    ctx.session.flush()
    going = rsvp_counts(ctx, [event.id])[event.id][YES]
    when = format_when(event.starts_at, tz=ctx.settings.zone, language=ctx.language)
    if answer == YES:
        return say(ctx, f"You're going to {name} ({when}). {going} going.",
                   f"已报名 {name}，时间 {when}。目前 {going} 人报名。")
    if answer == MAYBE:
        return say(ctx, f"Marked as maybe for {name} ({when}).", f"已将 {name} 标记为待定，时间 {when}。")
    return say(ctx, f"OK, you're not going to {name}.", f"好的，已取消 {name} 的报名。")


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
