"""``/answer ID YOUR ANSWER [--private]`` and ``/answer ID pass``
(``/回答 编号 你的回答``, ``/回答 编号 跳过``).

The ``questions`` job (:mod:`jobs.questions`) sends an open question to a few members who may know, one
:class:`bot.models.QuestionRoute` each; ``ID`` is that route's id, shown in the message (and the value of
its "Answer" button). Only the member the route was sent to may use it.

An answer is stored on the route (status ``answered``), closes the question (``MessageLog.answered``), and
goes to the asker by direct message (key ``answered:<route id>``), signed with the answerer's name. Unless
``--private`` is given it is also saved as a :class:`bot.models.Resource` (title: the question; description:
the answer; source ``answer``) so the matcher finds it when someone asks again; with ``--private`` the
answer reaches the asker only, unsigned, and no resource is made. ``pass`` (``skip``, ``跳过``) declines the
question (status ``declined``); a member who passed may still answer later. A route answered once cannot be
answered again.
"""

from __future__ import annotations

import re

from sqlmodel import select

from bot.commands.context import CommandContext
from bot.commands.parsing import normalise_quotes, parse_id
from bot.commands.replies import say
from bot.errors import CommunityBotError, NotFoundError, UsageError
from bot.i18n import tr
from bot.language import detect_language
from bot.members import member_language
from bot.messages import Reply
from bot.models import Member, MessageLog, PlatformIdentity, QuestionRoute, Resource
from bot.notifications import queue_direct

#: The action of the "Answer" button on a routed question (its value is the route id); Slack opens a form.
ANSWER_ACTION = "answer"

#: Words that decline a question instead of answering it.
PASS_WORDS = frozenset({"pass", "skip", "跳过", "略过", "不知道"})
#: The longest resource title made from a question, in characters.
TITLE_CHARS = 200
_ID_THEN_TEXT = re.compile(r"(\S*)\s*(.*)", re.DOTALL)
_PRIVATE = re.compile(r"(?:^|\s)(?:--|——|－－|—|–)(?:private|私密|私下)(?=\s|$)", re.IGNORECASE)


def answer(ctx: CommandContext, args: str) -> list[Reply]:
    """``/answer ID TEXT [--private]`` or ``/answer ID pass``: answer (or decline) a routed question.

    Returns one private reply to the answerer: thanks, whether the asker was told, the resource made.

    Raises:
        UsageError: no id, an id that is not a whole number, or no answer text.
        NotFoundError: no route ``ID`` sent to this member in this community (the same message whether the
            route does not exist or belongs to someone else).
        CommunityBotError: the route was answered already.
    """
    lang = ctx.language
    found = _ID_THEN_TEXT.fullmatch(args.strip())
    assert found is not None  # the pattern matches every text
    head, rest = found.group(1), found.group(2)
    if not head:
        raise UsageError(tr(lang, "Which question? Use the number from the message that asked you.",
                            "是哪个问题？请使用问你的那条消息里的编号。"))
    route = _own_route(ctx, parse_id(head, what=tr(lang, "The question number", "问题编号"), language=lang))
    text, private = _split_private(rest)
    if not text:
        raise UsageError(tr(lang, f"Write your answer after the number: /answer {route.id} your answer "
                                  f"(or /answer {route.id} pass).",
                            f"请在编号后写上你的回答：/回答 {route.id} 你的回答"
                            f"（或 /回答 {route.id} 跳过）。"))
    if route.status == "answered":
        raise CommunityBotError(tr(lang, f"You already answered question #{route.id} — thank you!",
                                   f"你已经回答过问题 #{route.id}，谢谢！"))
    if text.lower() in PASS_WORDS:
        return [_decline(ctx, route)]
    return [_answer(ctx, route, text, private=private)]


def _own_route(ctx: CommandContext, route_id: int | None) -> QuestionRoute:
    """The route ``route_id`` if it was sent to ``ctx.member`` in this community.

    Raises:
        NotFoundError: it does not exist or is someone else's.
    """
    route = ctx.session.get(QuestionRoute, route_id) if route_id is not None else None
    if route is None or route.community_id != ctx.community.id or route.member_id != ctx.member.id:
        shown = route_id if route_id is not None else "?"
        raise NotFoundError(tr(ctx.language,
                               f"There is no question #{shown} for you. Use the number from the message "
                               "that asked you.",
                               f"没有发给你的问题 #{shown}。请使用问你的那条消息里的编号。"))
    return route


def _split_private(text: str) -> tuple[str, bool]:
    """The answer text without its ``--private`` switch (anywhere, any dash), and whether it was there."""
    cleaned = normalise_quotes(text)
    found = _PRIVATE.search(cleaned) is not None
    return _PRIVATE.sub(" ", cleaned).strip(), found


def _decline(ctx: CommandContext, route: QuestionRoute) -> Reply:
    route.status = "declined"
    ctx.session.add(route)
    return say(ctx, f"OK, you passed on question #{route.id}. Thanks for letting me know.",
               f"好的，你跳过了问题 #{route.id}。谢谢告知。", private=True)


def _answer(ctx: CommandContext, route: QuestionRoute, text: str, *, private: bool) -> Reply:
    question = ctx.session.get(MessageLog, route.message_log_id)
    assert question is not None  # the route's foreign key
    route.answer, route.status, route.answered_at = text, "answered", ctx.now
    question.answered = True
    resource = None if private else _save_resource(ctx, question, route, text)
    route.resource_id = resource.id if resource is not None else None
    ctx.session.add_all([route, question])
    told = _tell_asker(ctx, question, route, text, private=private)
    return _thanks(ctx, resource, told=told)


def _save_resource(ctx: CommandContext, question: MessageLog, route: QuestionRoute, text: str) -> Resource:
    """The answer as a resource of the community (title: the question on one line)."""
    title = " ".join(question.text.split())
    title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    assert ctx.community.id is not None
    resource = Resource(
        community_id=ctx.community.id, title=title, description=text, tags="answer",
        language=detect_language(f"{question.text} {text}") or ctx.language, source="answer",
        external_key=f"answer:{route.id}", added_by_member_id=ctx.member.id,
        created_at=ctx.now, updated_at=ctx.now,
    )
    ctx.session.add(resource)
    ctx.session.flush()
    return resource


def _tell_asker(ctx: CommandContext, question: MessageLog, route: QuestionRoute, text: str, *,
                private: bool) -> bool:
    """Queue the answer for the asker (``answered:<route id>``); ``False`` when the asker is unknown or
    cannot be reached."""
    asker = _asker(ctx, question)
    if asker is None:
        return False
    lang = question.language or member_language(asker, ctx.settings.language, session=ctx.session)
    quote = " ".join(question.text.split())[:300]
    by = tr(lang, "a community member", "一位社区成员") if private else ctx.member.display_name
    reply = Reply(text=tr(lang, f"An answer to your question “{quote}”:\n{text}\n— {by}",
                          f"你的问题“{quote}”有回答了：\n{text}\n——{by}"), language=lang)
    return queue_direct(ctx.session, key=f"answered:{route.id}", member=asker, kind="answer", reply=reply,
                        due_at=ctx.now)


def _asker(ctx: CommandContext, question: MessageLog) -> Member | None:
    identity = ctx.session.exec(select(PlatformIdentity).where(
        PlatformIdentity.community_id == question.community_id,
        PlatformIdentity.platform == question.platform,
        PlatformIdentity.platform_user_id == question.sender,
    )).first()
    return ctx.session.get(Member, identity.member_id) if identity is not None else None


def _thanks(ctx: CommandContext, resource: Resource | None, *, told: bool) -> Reply:
    sent_en = "Your answer went to the asker" if told else "I couldn't reach the asker"
    sent_zh = "你的回答已发给提问者" if told else "暂时联系不到提问者"
    if resource is None:
        return say(ctx, f"Thanks! {sent_en}; it was not saved as a resource.",
                   f"谢谢！{sent_zh}；这条回答没有保存为资源。", private=True)
    return say(ctx, f"Thanks! {sent_en}, and it is saved as resource #{resource.id} so I can answer this "
                    "next time.",
               f"谢谢！{sent_zh}，并已保存为资源 #{resource.id}，下次我就能直接回答。", private=True)
