"""``/intro yes|no|snooze ID`` and ``/intro helped ID yes|no`` (``/引荐 接受|拒绝|暂停 编号``,
``/引荐 有帮助 编号 是|否``): a member's answers to a double opt-in introduction
(:class:`bot.models.Introduction`), proposed by the ``introductions`` job (:mod:`jobs.introductions`).

Rules:

* Only the two members of an introduction may answer it; to anyone else it does not exist (the reply is the
  same as for an unknown number).
* Nobody is introduced until both said yes. Then the introduction moves to ``introduced`` (one conditional
  update, so two answers at once cannot introduce twice) and each member is sent the other's name, one-line
  profile and how to reach them, under the key ``intro-made:{id}:{member}`` (sent once, whoever queues it).
* Privacy: the proposal names nobody; names are shared only once both said yes. A ``no`` or a ``snooze``
  declines the introduction, and they look the same to the other member: who said no is never told. If the
  other member had already said yes, they get a neutral note that it will not go ahead (key
  ``intro-closed:{id}:{member}``); otherwise nothing is sent, and a later answer is told it is closed.
* ``snooze`` also pauses every introduction for the member for :data:`SNOOZE_DAYS` days
  (``intro_snooze_until``); ``/profile set intros: no`` stops them for good.
* ``helped`` records the check-back's answer a week after the introduction: ``helped`` becomes ``True`` as
  soon as one of the two says it helped, and ``False`` when the answer is no and nobody said yes.

Platforms with buttons send the button's command (:func:`button_command`); others type the command.
"""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.commands.context import CommandContext
from bot.commands.replies import say
from bot.errors import CommunityBotError, NotFoundError, UsageError
from bot.i18n import tr
from bot.members import member_language
from bot.messages import Button, Reply
from bot.models import Introduction, Member, PlatformIdentity
from bot.notifications import queue_direct

#: Days a ``snooze`` pauses introductions for the member.
SNOOZE_DAYS = 14
#: The notification kind of every introduction message (asks, introductions, notes, check-backs).
KIND = "introduction"

INTRO_YES, INTRO_NO, INTRO_SNOOZE = "intro_yes", "intro_no", "intro_snooze"
INTRO_HELPED, INTRO_NOT_HELPED = "intro_helped", "intro_not_helped"
_BUTTON_COMMANDS = {INTRO_YES: "yes", INTRO_NO: "no", INTRO_SNOOZE: "snooze",
                    INTRO_HELPED: "helped {} yes", INTRO_NOT_HELPED: "helped {} no"}

YES, NO, SNOOZE, HELPED = "yes", "no", "snooze", "helped"
_VERBS = {
    "yes": YES, "y": YES, "accept": YES, "ok": YES, "sure": YES, "接受": YES, "同意": YES, "好": YES,
    "是": YES, "要": YES,
    "no": NO, "n": NO, "decline": NO, "拒绝": NO, "不": NO, "不要": NO, "否": NO,
    "snooze": SNOOZE, "later": SNOOZE, "暂停": SNOOZE, "稍后": SNOOZE, "以后": SNOOZE,
    "helped": HELPED, "help": HELPED, "feedback": HELPED, "有帮助": HELPED, "帮助": HELPED, "反馈": HELPED,
}
_YES_WORDS = frozenset({"yes", "y", "true", "是", "有", "有帮助", "对"})
_NO_WORDS = frozenset({"no", "n", "false", "否", "没有", "无", "没"})
_WORDS = re.compile(r"\d+|[^\W\d_]+")
_PLATFORMS = {"slack": ("Slack", "Slack"), "wechat": ("WeChat", "微信"), "console": ("console", "控制台")}
_ONE_LINER_CHARS = 140


def ask_buttons(intro_id: int, language: str) -> tuple[Button, ...]:
    """Yes / no / not now buttons of a proposal (values: the introduction id)."""
    value = str(intro_id)
    return (Button(tr(language, "Yes, introduce us", "好，介绍我们认识"), INTRO_YES, value),
            Button(tr(language, "No, thanks", "不用了"), INTRO_NO, value),
            Button(tr(language, f"Not now ({SNOOZE_DAYS} days)", f"暂停 {SNOOZE_DAYS} 天"), INTRO_SNOOZE,
                   value))


def check_buttons(intro_id: int, language: str) -> tuple[Button, ...]:
    """It helped / it did not buttons of a check-back."""
    value = str(intro_id)
    return (Button(tr(language, "Yes, it helped", "有帮助"), INTRO_HELPED, value),
            Button(tr(language, "No", "没有"), INTRO_NOT_HELPED, value))


def button_command(action: str, value: str) -> str | None:
    """The command an introduction button stands for (``intro_yes``, ``7`` -> ``/intro yes 7``;
    ``intro_helped``, ``7`` -> ``/intro helped 7 yes``), else ``None``."""
    template = _BUTTON_COMMANDS.get(action)
    if template is None or not value.strip().isdigit():
        return None
    if "{}" in template:
        return "/intro " + template.format(value.strip())
    return f"/intro {template} {value.strip()}"


def intro_command(ctx: CommandContext, args: str) -> list[Reply]:
    """``/intro yes|no|snooze ID`` or ``/intro helped ID yes|no`` (the number may come first too).

    Raises:
        UsageError: no known answer, no number, or ``helped`` without yes/no.
        NotFoundError: no introduction with that number for the sender.
    """
    verb, intro_id, helped = _parse(args, ctx.language)
    intro = _find(ctx, intro_id)
    if verb == HELPED:
        assert helped is not None
        return [_record_helped(ctx, intro, helped)]
    return [_answer(ctx, intro, verb)]


def _parse(args: str, language: str) -> tuple[str, int, bool | None]:
    """``(verb, id, helped)`` of the argument text; ``helped`` only for ``helped``."""
    words = _WORDS.findall(args.lower())
    numbers = [w for w in words if w.isdigit()]
    names = [w for w in words if not w.isdigit()]
    verb = _VERBS.get(names[0]) if names else None
    if verb is None or len(numbers) != 1:
        raise UsageError(tr(language, "Answer with yes, no or snooze and the introduction's number, "
                                      "e.g. /intro yes 7.",
                            "请回复 接受、拒绝 或 暂停，加上引荐编号，例如 /引荐 接受 7。"))
    if verb != HELPED:
        return verb, int(numbers[0]), None
    answer = names[1] if len(names) > 1 else ""
    if answer not in _YES_WORDS | _NO_WORDS:
        raise UsageError(tr(language, f"Did it help? e.g. /intro helped {numbers[0]} yes",
                            f"有帮助吗？例如 /引荐 有帮助 {numbers[0]} 是"))
    return verb, int(numbers[0]), answer in _YES_WORDS


def _find(ctx: CommandContext, intro_id: int) -> Introduction:
    intro = ctx.session.get(Introduction, intro_id)
    if intro is None or intro.community_id != ctx.community.id or ctx.member.id not in (
            intro.member_a_id, intro.member_b_id):
        raise NotFoundError(tr(ctx.language, f"There is no introduction #{intro_id} for you.",
                               f"没有给你的引荐 #{intro_id}。"))
    return intro


def _other_id(intro: Introduction, member_id: int | None) -> int:
    return intro.member_b_id if member_id == intro.member_a_id else intro.member_a_id


def _answer(ctx: CommandContext, intro: Introduction, verb: str) -> Reply:
    """Record ``verb`` (yes / no / snooze) for ``ctx.member`` on a proposed introduction."""
    number = f"#{intro.id}"
    if intro.status != "proposed":
        return say(ctx, f"Introduction {number} is closed ({intro.status}); nothing changed.",
                   f"引荐 {number} 已结束（{_status_zh(intro.status)}），没有变化。")
    mine = "answer_a" if ctx.member.id == intro.member_a_id else "answer_b"
    setattr(intro, mine, verb)
    ctx.session.add(intro)
    ctx.session.flush()
    ctx.session.refresh(intro)  # the other member's answer, if it was committed meanwhile
    if verb == YES:
        return _accepted(ctx, intro)
    _decline(ctx, intro)
    if verb == SNOOZE:
        until = ctx.now + timedelta(days=SNOOZE_DAYS)
        ctx.member.intro_snooze_until = until
        ctx.session.add(ctx.member)
        day = until.date().isoformat()
        return say(ctx, f"OK, no introduction {number}, and no new introductions until {day}. "
                        "To stop them for good: /profile set intros: no",
                   f"好的，不进行引荐 {number}，{day} 之前也不再为你引荐。"
                   "如需永久关闭：/资料 设置 引荐：否", private=True)
    return say(ctx, f"OK, no introduction {number}. Nobody is told who said no.",
               f"好的，不进行引荐 {number}。不会告诉任何人是谁拒绝的。", private=True)


def _accepted(ctx: CommandContext, intro: Introduction) -> Reply:
    number = f"#{intro.id}"
    if not _move(ctx.session, intro, "introduced", answers_yes=True):
        return say(ctx, f"Thanks, you said yes to introduction {number}. I'll introduce you as soon as the "
                        "other member says yes too.",
                   f"好的，你已同意引荐 {number}。对方也同意后，我会马上为你们介绍。", private=True)
    intro.introduced_at = ctx.now
    ctx.session.add(intro)
    ctx.session.flush()
    a, b = ctx.session.get(Member, intro.member_a_id), ctx.session.get(Member, intro.member_b_id)
    assert a is not None and b is not None
    for member, other in ((a, b), (b, a)):
        lang = member_language(member, ctx.settings.language, session=ctx.session)
        queue_direct(ctx.session, key=f"intro-made:{intro.id}:{member.id}", member=member, kind=KIND,
                     reply=Reply(text=introduction_text(ctx.session, intro, member=member, other=other,
                                                        language=lang), language=lang),
                     due_at=ctx.now)
    return say(ctx, f"You both said yes to introduction {number}: I've sent each of you the other's details "
                    "in a direct message.",
               f"你们双方都同意了引荐 {number}：我已私信把对方的资料发给你们。", private=True)


def _decline(ctx: CommandContext, intro: Introduction) -> None:
    """Close ``intro`` as declined; a member who had said yes gets a neutral note (never who said no)."""
    if not _move(ctx.session, intro, "declined", answers_yes=False):
        return
    other_id = _other_id(intro, ctx.member.id)
    other_answer = intro.answer_b if other_id == intro.member_b_id else intro.answer_a
    other = ctx.session.get(Member, other_id)
    if other is None or other_answer != YES:
        return
    lang = member_language(other, ctx.settings.language, session=ctx.session)
    text = tr(lang, f"Introduction #{intro.id} won't go ahead this time. I'll keep looking for people you "
                    "should meet.",
              f"引荐 #{intro.id} 这次没有成功。我会继续为你寻找值得认识的人。")
    queue_direct(ctx.session, key=f"intro-closed:{intro.id}:{other_id}", member=other, kind=KIND,
                 reply=Reply(text=text, language=lang), due_at=ctx.now)


def _move(session: Session, intro: Introduction, status: str, *, answers_yes: bool) -> bool:
    """Set ``status`` where the introduction is still ``proposed`` (and, with ``answers_yes``, both
    answers are yes): one conditional update; ``True`` when this call made the change."""
    query = sa.update(Introduction).where(col(Introduction.id) == intro.id,
                                          col(Introduction.status) == "proposed")
    if answers_yes:
        query = query.where(col(Introduction.answer_a) == YES, col(Introduction.answer_b) == YES)
    result = session.exec(query.values(status=status).execution_options(
        synchronize_session=False))
    session.refresh(intro)
    return bool(result.rowcount == 1)


def _record_helped(ctx: CommandContext, intro: Introduction, helped: bool) -> Reply:
    if intro.status != "introduced":
        raise CommunityBotError(tr(ctx.language, f"Introduction #{intro.id} has not taken place.",
                                   f"引荐 #{intro.id} 尚未进行。"))
    intro.helped = True if helped else bool(intro.helped)
    ctx.session.add(intro)
    ctx.session.flush()
    return say(ctx, "Thanks for telling me, it helps me make better introductions.",
               "谢谢反馈，这能帮我做出更好的引荐。", private=True)


def introduction_text(session: Session, intro: Introduction, *, member: Member, other: Member,
                      language: str) -> str:
    """The message introducing ``other`` to ``member``: name, one-line profile, what they offer and need,
    and how to reach them (their display names on each platform)."""
    lines = [tr(language, f"🤝 Introduction #{intro.id}: you both said yes. Meet {other.display_name}!",
                f"🤝 引荐 #{intro.id}：你们双方都同意了，认识一下 {other.display_name}！")]
    about = one_liner(other.bio)
    if about:
        lines.append(about)
    if other.offers.strip() or other.skills.strip():
        lines.append(tr(language, "They offer: ", "TA 能提供：") + one_liner(other.offers or other.skills))
    if other.needs.strip():
        lines.append(tr(language, "They need: ", "TA 需要：") + one_liner(other.needs))
    reach = _reach(session, other, language)
    if reach:
        lines.append(tr(language, "Reach them: ", "联系方式：") + reach)
    lines.append(tr(language, "Say hello! In a week I'll ask whether it helped.",
                    "去打个招呼吧！一周后我会问问你是否有帮助。"))
    return "\n".join(lines)


def _reach(session: Session, member: Member, language: str) -> str:
    """``Slack: Ana · WeChat: 安娜``: the member's display name on each platform they use."""
    identities = session.exec(select(PlatformIdentity).where(PlatformIdentity.member_id == member.id)
                              .order_by(col(PlatformIdentity.id))).all()
    parts = []
    for identity in identities:
        en, zh = _PLATFORMS.get(identity.platform, (identity.platform, identity.platform))
        parts.append(f"{tr(language, en, zh)}{tr(language, ': ', '：')}"
                     f"{identity.display_name or member.display_name}")
    return " · ".join(dict.fromkeys(parts))


def one_liner(text: str, limit: int = _ONE_LINER_CHARS) -> str:
    """``text`` on one line, cut to about ``limit`` characters with "…" (on a word boundary when one is
    near)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;.，。") + "…"


def _status_zh(status: str) -> str:
    return {"introduced": "已介绍", "declined": "未进行", "expired": "已过期"}.get(status, status)
