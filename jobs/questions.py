"""The ``questions`` job: route questions the bot could not answer to members who may know.

An *open question* is a logged message (:class:`bot.models.MessageLog`) that the router flagged for review
(``needs_review``: no good match, or a confidence below the floor), that nobody has answered through
``/answer`` yet (``answered`` is false), and whose intent is a question (:data:`QUESTION_INTENTS`, or none).
Once it is older than the community's route-after delay (:func:`route_after`, default
:data:`DEFAULT_ROUTE_AFTER`) and not older than :data:`MAX_AGE`, the job asks the matcher for members
whose profile matches its text, keeps those above the community's match threshold who opted in to
questions (``consent_questions``), can be reached by direct message and are not the asker, and routes it
to the best :data:`MAX_ROUTES` of them: one :class:`bot.models.QuestionRoute` row each (unique per
question and member) and a direct message (key ``question:<log id>:<member id>``) that quotes the question
without naming the asker and says how to answer (``/answer ROUTE_ID ...``, :mod:`bot.commands.answer`, or
an "Answer" button whose value is the route id).

A question is routed once: one that has any route is never routed again (a member who passes does not
bring in the next one). One for which no member matches is looked at again on later runs until it is
:data:`MAX_AGE` old, so members who opt in later can still be asked.

Not done: "a channel question with no reply after a configurable time". The adapters do not report human
replies in threads to the core yet, so the bot cannot tell an unreplied channel question from a replied
one; only questions the bot itself could not answer are routed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from bot.commands.answer import ANSWER_ACTION
from bot.community import community_settings
from bot.db import session_scope
from bot.i18n import tr
from bot.members import member_language
from bot.messages import Button, Reply
from bot.models import Community, Member, MessageLog, PlatformIdentity, QuestionRoute
from bot.notifications import direct_address, queue_direct
from bot.ports import Matcher
from jobs.context import JobContext

log = logging.getLogger(__name__)

#: Intents of messages that ask something the community may know (``None``: never classified).
QUESTION_INTENTS = ("find_member", "find_resource", "find_event", "out_of_scope", "oos")
#: How long a question waits before it is routed when the community sets no delay.
DEFAULT_ROUTE_AFTER = timedelta(minutes=30)
#: The community setting (minutes, a whole number >= 1; validated by
#: :class:`bot.community.CommunitySettings`) that overrides :data:`DEFAULT_ROUTE_AFTER`.
ROUTE_AFTER_KEY = "question_route_after_minutes"
#: Questions older than this are left alone.
MAX_AGE = timedelta(days=7)
#: At most this many members are asked one question.
MAX_ROUTES = 3
#: How many members the matcher is asked for per question (before consent and reachability filters).
SEARCH_TOP_K = 10
#: At most this many questions per community are looked at per run (oldest first).
QUESTIONS_PER_RUN = 50
#: Longest quote of a question in a message, in characters.
QUOTE_CHARS = 500
#: The statuses of a :class:`bot.models.QuestionRoute`.
ROUTE_ASKED, ROUTE_ANSWERED, ROUTE_DECLINED = "asked", "answered", "declined"


def run_questions(ctx: JobContext, now: datetime) -> str:
    """The ``questions`` job: route every community's open questions due at ``now`` (aware UTC).

    Returns a one-line summary (``routed 2 questions (5 requests to members)``). A failure in one community
    is logged with its traceback and does not stop the others.
    """
    with session_scope(ctx.engine) as session:
        community_ids = list(session.exec(select(Community.id).order_by(col(Community.id))).all())
    questions = routes = 0
    for community_id in community_ids:
        try:
            with session_scope(ctx.engine) as session:
                q, r = _route_community(session, ctx, community_id, now)
        except Exception:
            log.exception("questions: community %s failed", community_id)
            continue
        questions, routes = questions + q, routes + r
    return f"routed {questions} questions ({routes} requests to members)"


def _route_community(session: Session, ctx: JobContext, community_id: int | None, now: datetime
                     ) -> tuple[int, int]:
    community = session.get(Community, community_id)
    assert community is not None and community.id is not None
    due = open_questions(session, community_id=community.id, since=now - MAX_AGE,
                         until=now - route_after(community), unrouted=True)
    if not due:
        return 0, 0
    settings = community_settings(community, settings=ctx.settings)
    matcher = ctx.get_matcher()
    questions = routes = 0
    for question in due:
        members = best_answerers(session, matcher, question=question, threshold=settings.match_threshold,
                                 limit=MAX_ROUTES)
        sent = sum(route_to(session, question=question, member=m, now=now, fallback=settings.language)
                   for m in members)
        questions, routes = questions + bool(sent), routes + sent
    return questions, routes


def route_after(community: Community) -> timedelta:
    """How long a question of ``community`` waits before it is routed: its ``question_route_after_minutes``
    setting (a whole number of minutes >= 1), else :data:`DEFAULT_ROUTE_AFTER` (also, with a warning, when
    the stored value is not such a number)."""
    raw = (community.settings or {}).get(ROUTE_AFTER_KEY)
    if raw is None:
        return DEFAULT_ROUTE_AFTER
    try:
        minutes = int(str(raw).strip())
    except ValueError:
        minutes = 0
    if minutes < 1:
        log.warning("community %r: ignoring %s=%r (a whole number of minutes >= 1)", community.name,
                    ROUTE_AFTER_KEY, raw)
        return DEFAULT_ROUTE_AFTER
    return timedelta(minutes=minutes)


def open_questions(
    session: Session, *, community_id: int, since: datetime, until: datetime, unrouted: bool = False,
    limit: int = QUESTIONS_PER_RUN,
) -> list[MessageLog]:
    """The open questions of a community logged in ``[since, until)``, oldest first, at most ``limit``.

    Open: ``needs_review`` and not ``answered``, intent in :data:`QUESTION_INTENTS` or ``None``.
    ``unrouted`` keeps only those without any :class:`QuestionRoute`.
    """
    query = select(MessageLog).where(
        MessageLog.community_id == community_id,
        col(MessageLog.needs_review).is_(True),
        col(MessageLog.answered).is_(False),
        or_(col(MessageLog.intent).in_(QUESTION_INTENTS), col(MessageLog.intent).is_(None)),
        col(MessageLog.created_at) >= since,
        col(MessageLog.created_at) < until,
    )
    if unrouted:
        routed = select(QuestionRoute.id).where(col(QuestionRoute.message_log_id) == col(MessageLog.id))
        query = query.where(~sa.exists(routed))
    query = query.order_by(col(MessageLog.created_at), col(MessageLog.id)).limit(limit)
    return list(session.exec(query).all())


def asker_of(session: Session, question: MessageLog) -> Member | None:
    """The member who asked ``question`` (by its platform and sender), or ``None`` if unknown."""
    identity = session.exec(select(PlatformIdentity).where(
        PlatformIdentity.community_id == question.community_id,
        PlatformIdentity.platform == question.platform,
        PlatformIdentity.platform_user_id == question.sender,
    )).first()
    return session.get(Member, identity.member_id) if identity is not None else None


def best_answerers(
    session: Session, matcher: Matcher, *, question: MessageLog, threshold: float | None, limit: int,
) -> list[Member]:
    """Up to ``limit`` members who may answer ``question``, best first.

    The matcher ranks members against the question's text (in its language, when known); a member counts
    when their match is above ``threshold`` (``None``: the matcher's default), they opted in to questions,
    they can be reached by direct message, and they are not the asker.
    """
    asker = asker_of(session, question)
    found = matcher.search(community_id=question.community_id, query=question.text, kinds=["member"],
                           top_k=SEARCH_TOP_K, threshold=threshold,
                           languages=[question.language] if question.language else None)
    ids = [m.id for m in found if not m.below_threshold and (asker is None or m.id != asker.id)]
    if not ids:
        return []
    rows = {m.id: m for m in session.exec(select(Member).where(
        col(Member.id).in_(ids), Member.community_id == question.community_id,
        col(Member.consent_questions).is_(True))).all()}
    ranked = [rows[i] for i in dict.fromkeys(ids) if i in rows]
    return [m for m in ranked if direct_address(session, m) is not None][:limit]


def ensure_route(session: Session, *, question: MessageLog, member: Member, now: datetime) -> QuestionRoute:
    """The route of ``question`` to ``member``, created (status ``asked``) if there is none yet; a route
    created meanwhile by another writer is read back (the pair is unique). Flushes, never commits."""
    def find() -> QuestionRoute | None:
        return session.exec(select(QuestionRoute).where(
            QuestionRoute.message_log_id == question.id, QuestionRoute.member_id == member.id)).first()

    existing = find()
    if existing is not None:
        return existing
    assert question.id is not None and member.id is not None
    route = QuestionRoute(community_id=question.community_id, message_log_id=question.id,
                          member_id=member.id, asked_at=now)
    try:
        with session.begin_nested():
            session.add(route)
    except IntegrityError:
        again = find()
        assert again is not None
        return again
    return route


def route_to(session: Session, *, question: MessageLog, member: Member, now: datetime, fallback: str) -> bool:
    """Route ``question`` to ``member``: the route row and the direct message (in the member's language,
    else ``fallback``); ``False`` when that message was queued before or cannot be delivered."""
    route = ensure_route(session, question=question, member=member, now=now)
    language = member_language(member, fallback, session=session)
    reply = question_reply(question=question, route=route, language=language)
    return queue_direct(session, key=f"question:{question.id}:{member.id}", member=member, kind="question",
                        reply=reply, due_at=now)


def question_reply(*, question: MessageLog, route: QuestionRoute, language: str) -> Reply:
    """The direct message that asks a member ``question``: the quote, ``/answer ID ...`` (and ``pass``),
    what happens to the answer, how to stop these; an "Answer" button whose value is the route id."""
    rid, quote = route.id, quote_text(question.text)
    text = tr(
        language,
        f"A member asked something I couldn't answer, and your profile suggests you may know:\n“{quote}”\n"
        f"Answer with /answer {rid} your answer (or tap Answer). Not for you? /answer {rid} pass\n"
        "Your answer goes to the asker and is saved as a community resource so I can answer next time; "
        "add --private to send it to the asker only.\n"
        "Stop these questions with /profile set questions: no",
        f"有成员问了一个我答不上来的问题，从你的资料看，你也许知道：\n“{quote}”\n"
        f"回答请发送 /回答 {rid} 你的回答（或点「回答」）。不合适？发送 /回答 {rid} 跳过\n"
        "你的回答会发给提问者，并保存为社区资源，下次我就能直接回答；加上 --private 则只发给提问者。\n"
        "不想再收到这类问题：/资料 设置 问题：否",
    )
    button = Button(label=tr(language, "Answer", "回答"), action=ANSWER_ACTION, value=str(rid))
    return Reply(text=text, language=language, buttons=(button,))


def quote_text(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
