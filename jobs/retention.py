"""The ``retention`` job: delete logged messages older than each community's ``message_log_days``.

A :class:`bot.models.MessageLog` row older than the community's retention period
(:attr:`bot.community.CommunitySettings.message_log_days`, default 180 days) is deleted, together with the
question routes (:class:`bot.models.QuestionRoute`) that point at it, answered, declined or unanswered:
the routes quote the question, so they go with it (an answer shared with the answerer's consent already
lives on as a resource, which stays). One exception keeps a message past its period: a question still
waiting for an answer from a member it was routed to within the period (a route ``asked`` whose
``asked_at`` is not older than the period), so ``/answer`` still finds it; it goes at the first run after
that route is answered, declined or itself older than the period.

Idempotent: it only deletes, by age as of ``now``, so running it twice, late or in two processes does no
harm. Rows are deleted in batches of :data:`BATCH` to keep write transactions short.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.community import community_settings
from bot.db import session_scope
from bot.models import Community, MessageLog, QuestionRoute
from jobs.context import JobContext

log = logging.getLogger(__name__)

#: Message-log rows deleted per transaction.
BATCH = 500


def run_retention(ctx: JobContext, now: datetime) -> str:
    """Delete every community's logged messages older than its ``message_log_days`` as of ``now``.

    Returns a one-line summary (``deleted 12 logged messages (1 question route)``). A failure in one
    community is logged with its traceback and does not stop the others.
    """
    with session_scope(ctx.engine) as session:
        communities = list(session.exec(select(Community).order_by(col(Community.id))).all())
    messages = routes = 0
    for community in communities:
        try:
            days = community_settings(community, settings=ctx.settings).message_log_days
            m, r = _expire(ctx, community.id, now - timedelta(days=days))
        except Exception:
            log.exception("retention failed for community %s", community.id)
            continue
        messages, routes = messages + m, routes + r
    return f"deleted {messages} logged messages ({routes} question routes)"


def _expire(ctx: JobContext, community_id: int | None, cutoff: datetime) -> tuple[int, int]:
    """Delete ``community_id``'s messages logged before ``cutoff`` (see the module docstring); returns
    (messages, routes) deleted."""
    waiting = (
        select(QuestionRoute.id)
        .where(col(QuestionRoute.message_log_id) == col(MessageLog.id), QuestionRoute.status == "asked",
               col(QuestionRoute.asked_at) >= cutoff)
        .exists()
    )
    messages = routes = 0
    while True:
        with session_scope(ctx.engine) as session:
            ids = list(session.exec(
                select(MessageLog.id)
                .where(MessageLog.community_id == community_id, col(MessageLog.created_at) < cutoff, ~waiting)
                .order_by(col(MessageLog.id))
                .limit(BATCH)
            ).all())
            if not ids:
                return messages, routes
            gone_routes = session.exec(
                sa.delete(QuestionRoute).where(col(QuestionRoute.message_log_id).in_(ids)))
            gone = session.exec(sa.delete(MessageLog).where(col(MessageLog.id).in_(ids)))
            routes += gone_routes.rowcount or 0
            messages += gone.rowcount or 0
