"""Onboarding: the welcome of a member who joins a channel or group the bot serves, and the short
conversation that fills their profile.

Adapters deliver a join as an :class:`~bot.messages.IncomingMessage` with ``intent="member_joined"``
(:data:`JOINED`; empty text, the conversation joined, the new member as sender). The router hands it to
:func:`welcome`, which welcomes each member once ever (``Member.welcomed_at``, set by one conditional
update, so two join events at once still welcome once), privately where the platform can
(``Reply.private``), in the member's language (the router's choice: their stated languages, else the
community's).

The welcome offers three questions, asked one at a time in the member's direct chat with the bot: what
they work on (``bio``), what they can offer (``offers``), what they need (``needs``); questions whose field
is already filled are left out. ``Member.onboarding`` holds the step waiting for an answer (the field's
name), then ``done``, or ``skipped``. While a step waits, the router gives the member's direct, non-command
messages to :func:`take_answer` instead of the classifier (commands work as usual):

* each answer is stored at once (``updated_at`` is set, so matching re-indexes the profile, and
  ``consent_suggest`` is turned on, as ``/profile set`` does), then the next question is asked;
* a pass word (``-``, ``none``, ``无``) leaves that field empty and moves on;
* a skip word (``skip``, ``跳过``) ends the conversation (``skipped``);
* a question (:func:`is_question`: it ends with ``?``/``？`` or ``吗``, or starts with a question word such
  as ``who``, ``anyone``, ``is there``, ``有人``, ``请问``, ``有没有``) is not an answer: it is handled as
  any other message, nothing is stored, and the step keeps waiting for the answer;
* a conversation untouched for :data:`ANSWER_WINDOW` lapses (``skipped``): the member's next message is
  handled as any other, never stored as an old question's answer.

The welcome is written in the member's language (:func:`bot.members.member_language`: their profile's, else
that of their latest message to the bot, else the language the router chose, the community's at a first
contact).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from bot.i18n import tr
from bot.members import member_language
from bot.messages import Reply
from bot.models import Member

#: The platform-stated intent of a join event.
JOINED = "member_joined"
#: The questions, in order: each is the profile field its answer fills.
STEPS = ("bio", "offers", "needs")
DONE, SKIPPED = "done", "skipped"
#: How long a question waits for its answer before the conversation lapses.
ANSWER_WINDOW = timedelta(days=3)
#: The longest answer stored, in characters.
MAX_ANSWER_CHARS = 1000

_QUESTIONS = {
    "bio": ("What do you work on?", "你在做什么（工作或项目）？"),
    "offers": ("What can you offer other members (skills, advice, contacts)?",
               "你能为其他成员提供什么（技能、建议、人脉）？"),
    "needs": ("What do you need right now (help, people, resources)?",
              "你现在需要什么（帮助、人脉、资源）？"),
}
_SKIP = frozenset({"skip", "stop", "cancel", "later", "not now",
                   "跳过", "不用了", "算了", "停止", "以后再说"})
_PASS = frozenset({"-", "none", "nothing", "n/a", "pass", "next", "无", "没有", "暂无", "下一个", "下一题"})
#: A message that starts with one of these asks something (English: whole words, any case).
_QUESTION_START = re.compile(
    r"(?:(?:who|whom|whose|what|where|when|why|which|how|any|anyone|anybody|is\s+there|are\s+there"
    r"|is\s+anyone|does\s+anyone|does\s+anybody|do\s+you\s+know|can\s+anyone|can\s+someone"
    r"|could\s+anyone|could\s+someone)\b"
    r"|有人|有谁|谁|哪里|哪儿|哪个|哪位|哪些|哪家|哪种|哪天|哪一|怎么|怎样|如何|什么|为什么|有没有|请问|能不能"
    r"|可不可以|是否|求推荐)",
    re.IGNORECASE)
#: A message that ends with one of these (trailing spaces and full stops aside) asks something.
_QUESTION_END = ("?", "？", "吗")


def welcome(session: Session, *, member: Member, community_name: str, language: str,
            now: datetime) -> list[Reply]:
    """The welcome of ``member`` and the first question (one private reply), or ``[]`` when the member
    was welcomed before. Sets ``welcomed_at`` and ``onboarding``; flushes, never commits.

    The reply is in :func:`bot.members.member_language` of the member, with ``language`` (the router's
    choice: the community's for a member it has not heard from) as the fallback."""
    if member.welcomed_at is not None or not _claim_welcome(session, member, now):
        return []
    language = member_language(member, language, session=session)
    step = _next_step(member, after=None)
    member.onboarding = step or DONE
    session.add(member)
    session.flush()
    hello = tr(language,
               f"👋 Welcome to {community_name}, {member.display_name}! I'm the community's assistant: "
               "ask me who can help, which resources exist, or what events are on.",
               f"👋 欢迎加入 {community_name}，{member.display_name}！我是社区助手：可以问我谁能帮忙、"
               "有哪些资源、近期有什么活动。")
    if step is None:
        more = tr(language, "Your profile already says what you do, offer and need. Change it any time with "
                            "/profile set.",
                  "你的资料里已经写了你在做什么、能提供和需要什么。随时可用 /资料 设置 修改。")
        return [Reply(text=f"{hello}\n{more}", language=language, private=True)]
    offer = tr(language,
               "Want members who can help you, or who need what you know, to find you? Answer three short "
               "questions in a direct message to me. What you say goes on your profile and is used to "
               "suggest introductions (change it any time with /profile set). Say \"skip\" to stop.",
               "想让能帮到你、或需要你所长的成员找到你吗？请私信回答我三个小问题。你的回答会写入你的资料，"
               "用于推荐和引荐（随时可用 /资料 设置 修改）。回复「跳过」即可结束。")
    return [Reply(text=f"{hello}\n{offer}\n{_question(step, language)}", language=language, private=True)]


def _claim_welcome(session: Session, member: Member, now: datetime) -> bool:
    """Set ``welcomed_at`` where it is still empty (one conditional update); ``True`` if this call did."""
    result = session.exec(
        sa.update(Member).where(col(Member.id) == member.id, col(Member.welcomed_at).is_(None))
        .values(welcomed_at=now).execution_options(synchronize_session=False)
    )
    session.refresh(member)
    return bool(result.rowcount == 1)


def take_answer(session: Session, *, member: Member, text: str, language: str,
                now: datetime) -> list[Reply] | None:
    """Handle ``text`` (a direct, non-command message of ``member``) as the answer to the waiting question.

    Returns the replies (the next question, or the closing summary), or ``None`` when no question waits
    or ``text`` is itself a question (:func:`is_question`; the message is then handled as usual and the
    step still waits); a conversation that lapsed is closed (``skipped``) and gives ``None``. Flushes,
    never commits.
    """
    step = member.onboarding
    if step not in STEPS:
        return None
    if _lapsed(member, now):
        _finish(session, member, SKIPPED)
        return None
    word = text.strip().strip(" .!。！").casefold()
    if not word:
        return [Reply(text=_question(step, language), language=language, private=True)]
    if word in _SKIP:
        _finish(session, member, SKIPPED)
        return [Reply(text=tr(language, "OK, no more questions. You can fill your profile any time with "
                                        "/profile set, e.g. /profile set offers: ...; needs: ...",
                              "好的，不再提问。随时可以用 /资料 设置 填写资料，"
                              "例如 /资料 设置 能提供：……；需要：……"),
                      language=language, private=True)]
    if word not in _PASS:
        if is_question(text):
            return None  # the step keeps waiting; the router handles the question as usual
        _store(session, member, step, text.strip()[:MAX_ANSWER_CHARS], now)
    following = _next_step(member, after=step)
    if following is None:
        _finish(session, member, DONE)
        return [Reply(text=_summary(member, language), language=language, private=True)]
    member.onboarding = following
    session.add(member)
    session.flush()
    thanks = tr(language, "Thanks!", "谢谢！")
    return [Reply(text=f"{thanks} {_question(following, language)}", language=language, private=True)]


def is_question(text: str) -> bool:
    """Whether ``text`` asks something instead of answering: it ends with ``?``, ``？`` or ``吗`` (trailing
    white space and full stops aside), or starts with a question word (``who``, ``any``, ``anyone``,
    ``is there``, ``有人``, ``谁``, ``哪里``, ``怎么``, ``什么``, ``有没有``, ``请问``, ``能不能`` …)."""
    stripped = text.strip()
    return (stripped.rstrip(" .。!！~～…").endswith(_QUESTION_END)
            or _QUESTION_START.match(stripped) is not None)


def _lapsed(member: Member, now: datetime) -> bool:
    """No welcome or answer within :data:`ANSWER_WINDOW` (the last of ``welcomed_at`` and ``updated_at``)."""
    touched = max(t for t in (member.welcomed_at, member.updated_at) if t is not None)
    return now - touched > ANSWER_WINDOW


def _store(session: Session, member: Member, field: str, value: str, now: datetime) -> None:
    setattr(member, field, value)
    member.consent_suggest = True
    member.updated_at = now
    session.add(member)
    session.flush()


def _finish(session: Session, member: Member, state: str) -> None:
    member.onboarding = state
    session.add(member)
    session.flush()


def _next_step(member: Member, *, after: str | None) -> str | None:
    """The first step after ``after`` (from the start for ``None``) whose field is still empty."""
    start = 0 if after is None else STEPS.index(after) + 1
    return next((s for s in STEPS[start:] if not str(getattr(member, s)).strip()), None)


def _question(step: str, language: str) -> str:
    en, zh = _QUESTIONS[step]
    return f"({STEPS.index(step) + 1}/{len(STEPS)}) {tr(language, en, zh)}"


def _summary(member: Member, language: str) -> str:
    unset = tr(language, "(not set)", "（未填写）")
    lines = [tr(language, "Thanks, that's all my questions. Your profile now says:",
                "谢谢，问题就这些。你的资料现在是：")]
    labels = (("bio", "Works on", "在做"), ("offers", "Offers", "能提供"), ("needs", "Needs", "需要"))
    for field, en, zh in labels:
        lines.append(f"{tr(language, en, zh)}{tr(language, ': ', '：')}{getattr(member, field) or unset}")
    lines.append(tr(language, "Change it any time with /profile set.", "随时可用 /资料 设置 修改。"))
    return "\n".join(lines)
