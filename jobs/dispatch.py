"""Sending queued notifications (:mod:`bot.notifications`) through the platforms this process serves.

Exactly once, in the sense that matters to members: a notification is queued once (its unique key) and
sent at most once: the dispatcher claims a due row by moving it from ``pending`` to ``sending`` with a
conditional update (of two dispatchers only one wins) and records ``sent`` or ``failed`` afterwards. A row
whose due time passed more than its grace window ago (the bot was down) is marked ``missed`` and logged,
never sent late; a row for a platform this process does not serve waits for one that does, until its
grace window ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.db import session_scope
from bot.models import Community, Notification, NotificationStatus
from bot.notifications import reply_of
from jobs.context import JobContext, Sender

log = logging.getLogger(__name__)

#: How late a notification of each kind may still go out (the bot was down when it was due).
GRACE: dict[str, timedelta] = {
    "reminder": timedelta(minutes=30),
    "digest": timedelta(hours=6),
    "personal_digest": timedelta(hours=12),
}
#: The grace window of kinds not in :data:`GRACE`.
DEFAULT_GRACE = timedelta(hours=24)


@dataclass
class DispatchReport:
    """What one :func:`dispatch_due` pass did (counts of notifications)."""

    sent: int = 0
    failed: int = 0
    missed: int = 0
    waiting: int = 0
    keys: list[str] = field(default_factory=list)


def dispatch_due(
    engine: Engine,
    *,
    senders: Mapping[str, Sender],
    now: datetime,
    limit: int = 200,
) -> DispatchReport:
    """Send the notifications due at ``now`` (oldest first, at most ``limit``) through ``senders``
    (``{"slack": ..., "wechat": ..., "console": ...}``).

    Returns what was sent, failed, marked missed, or left waiting for a platform this process does not serve.
    """
    report = DispatchReport()
    with session_scope(engine) as session:
        rows = session.exec(
            select(Notification, Community.name)
            .join(Community, col(Community.id) == Notification.community_id)
            .where(Notification.status == NotificationStatus.PENDING, col(Notification.due_at) <= now)
            .order_by(col(Notification.due_at), col(Notification.id))
            .limit(limit)
        ).all()
    for row, community in rows:
        grace = GRACE.get(row.kind, DEFAULT_GRACE)
        if now - row.due_at > grace:
            if _move(engine, row.id, NotificationStatus.PENDING, NotificationStatus.MISSED,
                     error=f"due {row.due_at.isoformat()}, more than {grace} before {now.isoformat()}"):
                report.missed += 1
                log.warning("notification %s missed: it was due at %s and the grace window is %s",
                            row.key, row.due_at.isoformat(), grace)
            continue
        sender = senders.get(row.platform)
        if sender is None:
            report.waiting += 1
            continue
        if not _move(engine, row.id, NotificationStatus.PENDING, NotificationStatus.SENDING):
            continue  # another dispatcher took it
        try:
            sender.send(community=community, conversation=row.conversation, reply=reply_of(row))
        except Exception as exc:  # noqa: BLE001 - one failed send never stops the others
            log.warning("notification %s to %s:%s failed: %s", row.key, row.platform, row.conversation, exc)
            _move(engine, row.id, NotificationStatus.SENDING, NotificationStatus.FAILED, error=str(exc)[:500])
            report.failed += 1
            continue
        _move(engine, row.id, NotificationStatus.SENDING, NotificationStatus.SENT, sent_at=now)
        report.sent += 1
        report.keys.append(row.key)
    return report


def run_dispatch(ctx: JobContext, now: datetime) -> str:
    """The ``dispatch`` job: :func:`dispatch_due` through the context's senders."""
    report = dispatch_due(ctx.engine, senders=ctx.senders, now=now)
    return (f"sent {report.sent}, failed {report.failed}, missed {report.missed}, "
            f"waiting for another platform {report.waiting}")


def _move(
    engine: Engine,
    notification_id: int | None,
    before: str,
    after: str,
    *,
    error: str = "",
    sent_at: datetime | None = None,
) -> bool:
    """Set the status ``after`` where it is ``before`` (one conditional update); ``True`` if this call did."""
    values: dict[str, object] = {"status": after}
    if error:
        values["error"] = error
    if sent_at is not None:
        values["sent_at"] = sent_at
    with session_scope(engine) as session:
        result = session.exec(
            sa.update(Notification)
            .where(col(Notification.id) == notification_id, col(Notification.status) == before)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)
