"""Feedback into training data: the review queue and what puts messages into it.

The review queue is the set of :class:`bot.models.MessageLog` rows with ``needs_review`` set. The router
sets it for answers it could not give (no good match, a confidence below the floor) and for feedback; this
module adds the feedback that points at an *earlier* message:

* a short negative reaction (:func:`is_negative_reaction`: ``不对``, ``wrong``, ``not helpful``, ...)
  sent by a member within :data:`REACTION_WINDOW` of their previous message in the same conversation,
  when the bot answered that message, flags that message (:func:`flag_previous_answer`);
* a "not helpful" button (a message whose intent the platform states as ``feedback``) flags the member's
  latest answered message in that conversation within :data:`BUTTON_WINDOW`.

Admins read the queue with ``/bot review`` and clear its rows by labelling or dismissing them.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.messages import IncomingMessage
from bot.models import MessageLog

#: The intent of feedback messages (and of the Slack "helpful" / "not helpful" buttons).
FEEDBACK = "feedback"
#: How long after a message a typed reaction still refers to it.
REACTION_WINDOW = timedelta(minutes=10)
#: How long after an answer its "not helpful" button still refers to it (buttons stay on screen).
BUTTON_WINDOW = timedelta(hours=24)

_THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"


def normalise_reaction(text: str) -> str:
    """``text`` folded for a whole-message comparison: NFKC, case-folded, with everything but letters and
    digits removed (spaces, punctuation, apostrophes, emoji): ``"That's wrong!! 🙄"`` -> ``"thatswrong"``."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


NEGATIVE_REACTIONS: frozenset[str] = frozenset(normalise_reaction(t) for t in (
    "wrong", "that's wrong", "that is wrong", "wrong answer", "nope, wrong", "incorrect", "not right",
    "that's not right", "not helpful", "unhelpful", "useless", "no that's not it", "that's not it",
    "not what I asked", "not what I meant", "not what I'm looking for",
    "不对", "不对啊", "不对吧", "错了", "错了吧", "答错了", "你错了", "说错了", "搞错了", "不是这个",
    "不是这个意思", "不是我要的", "不是我想要的", "没用", "没帮助", "没有帮助", "没帮上忙",
))
"""Whole messages (after :func:`normalise_reaction`) that say "your last answer was wrong"."""

POSITIVE_FEEDBACK: frozenset[str] = frozenset(normalise_reaction(t) for t in ("helpful", "有帮助"))
"""Feedback texts that say the answer helped (the Slack "helpful" button): nothing to review."""


def is_negative_reaction(text: str) -> bool:
    """Whether the whole of ``text`` is a short negative reaction (``不对！``, ``Wrong.``, ``👎``)."""
    folded = normalise_reaction(text)
    if not folded:
        return _THUMBS_DOWN in text
    return folded in NEGATIVE_REACTIONS


def is_positive_feedback(text: str) -> bool:
    """Whether ``text`` is positive feedback (the "helpful" button)."""
    return normalise_reaction(text) in POSITIVE_FEEDBACK


def _is_answer(row: MessageLog) -> bool:
    """A message the bot classified and replied to (not a command, a welcome, or feedback itself)."""
    return row.confidence is not None and row.intent not in (None, FEEDBACK)


def previous_answer(
    session: Session,
    *,
    community_id: int,
    message: IncomingMessage,
    within: timedelta,
    latest_only: bool = True,
) -> MessageLog | None:
    """The message of ``message``'s sender that ``message`` reacts to, or ``None``.

    Looks at the sender's earlier messages in the same community, platform and conversation received at
    most ``within`` before ``message.received_at`` (``message``'s own log row excluded). With
    ``latest_only`` only the very latest counts (a typed reaction must come right after the answer);
    otherwise the latest answered one (a button may be pressed after other messages). Either way the
    message must be one the bot classified and answered (not a command or feedback).
    """
    query = select(MessageLog).where(
        MessageLog.community_id == community_id,
        MessageLog.platform == message.platform,
        MessageLog.conversation == message.conversation,
        MessageLog.sender == message.sender,
        col(MessageLog.created_at) <= message.received_at,
        col(MessageLog.created_at) >= message.received_at - within,
    )
    if message.platform_key:
        query = query.where(func.coalesce(MessageLog.platform_key, "") != message.platform_key)
    if not latest_only:
        query = query.where(col(MessageLog.confidence).is_not(None), col(MessageLog.intent) != FEEDBACK)
    row = session.exec(query.order_by(col(MessageLog.created_at).desc(), col(MessageLog.id).desc())).first()
    return row if row is not None and _is_answer(row) else None


def flag_previous_answer(
    session: Session,
    *,
    community_id: int,
    message: IncomingMessage,
    within: timedelta,
    latest_only: bool = True,
) -> MessageLog | None:
    """Put the message ``message`` reacts to (:func:`previous_answer`) into the review queue.

    Returns the flagged row (flagged already or now), or ``None`` when ``message`` reacts to nothing.
    Flushes nothing and never commits; the intent and confidence of the row are kept as predicted.
    """
    row = previous_answer(session, community_id=community_id, message=message, within=within,
                          latest_only=latest_only)
    if row is not None and not row.needs_review:
        row.needs_review = True
        session.add(row)
    return row


def review_queue(session: Session, *, community_id: int, limit: int) -> list[MessageLog]:
    """The ``limit`` oldest messages of the community waiting for review, oldest first."""
    return list(session.exec(
        select(MessageLog)
        .where(MessageLog.community_id == community_id, col(MessageLog.needs_review).is_(True))
        .order_by(col(MessageLog.created_at), col(MessageLog.id))
        .limit(limit)
    ).all())


def review_queue_size(session: Session, *, community_id: int) -> int:
    """How many messages of the community wait for review."""
    count = session.exec(
        select(func.count()).select_from(MessageLog).where(
            MessageLog.community_id == community_id, col(MessageLog.needs_review).is_(True))
    ).one()
    return int(count)
