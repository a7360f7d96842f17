"""Queueing messages the bot sends on its own: announcements, reminders, digests, introductions.

Commands and scheduled jobs do not talk to platforms; they queue a :class:`bot.models.Notification` row
with a key that names the message once and for all, and the dispatcher of the active scheduler
(:mod:`jobs.dispatch`) sends due rows through the platforms this deployment serves. The key makes the
queueing idempotent: a job that runs twice (two processes, a restart in the middle) queues each message
once. A member's direct messages go to the platform where they last talked to the bot.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.messages import Button, Reply
from bot.models import Member, MessageLog, Notification, PlatformIdentity, utcnow

log = logging.getLogger(__name__)


def queue_notification(
    session: Session,
    *,
    key: str,
    community_id: int,
    kind: str,
    platform: str,
    conversation: str,
    reply: Reply,
    due_at: datetime | None = None,
    member_id: int | None = None,
    attachment: str = "",
) -> bool:
    """Queue ``reply`` for ``(platform, conversation)`` at ``due_at`` (default now) under ``key`` (with the
    picture at the path ``attachment``, shown where the platform allows pictures).

    Returns ``False`` (and queues nothing) when a notification with ``key`` exists already, whatever its
    status: a message is queued at most once. Runs in a savepoint, so a duplicate never spoils the
    caller's transaction; flushes, never commits.
    """
    if session.exec(select(Notification.id).where(Notification.key == key)).first() is not None:
        return False
    row = Notification(
        key=key[:300],
        community_id=community_id,
        kind=kind,
        platform=platform,
        conversation=conversation,
        member_id=member_id,
        text=reply.text,
        language=reply.language,
        buttons=button_rows(reply),
        due_at=due_at or utcnow(),
        attachment=attachment,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # queued by another process meanwhile
        return False
    return True


def direct_address(session: Session, member: Member) -> tuple[str, str] | None:
    """Where to reach ``member`` privately: ``(platform, user id)`` of the platform where they last wrote to
    the bot, else of their first linked account; ``None`` for a member without any account (an imported
    directory entry)."""
    identities = session.exec(
        select(PlatformIdentity).where(PlatformIdentity.member_id == member.id).order_by(
            col(PlatformIdentity.id)
        )
    ).all()
    if not identities:
        return None
    by_account = {(i.platform, i.platform_user_id): i for i in identities}
    latest = session.exec(
        select(MessageLog.platform, MessageLog.sender)
        .where(
            MessageLog.community_id == member.community_id,
            col(MessageLog.sender).in_([i.platform_user_id for i in identities]),
        )
        .order_by(col(MessageLog.created_at).desc())
    ).first()
    if latest is not None and (latest[0], latest[1]) in by_account:
        return latest[0], latest[1]
    return identities[0].platform, identities[0].platform_user_id


def queue_direct(
    session: Session,
    *,
    key: str,
    member: Member,
    kind: str,
    reply: Reply,
    due_at: datetime | None = None,
) -> bool:
    """Queue ``reply`` for ``member``'s direct chat (:func:`direct_address`); ``False`` when the member
    cannot be reached or ``key`` was queued before."""
    address = direct_address(session, member)
    if address is None or member.id is None:
        return False
    return queue_notification(
        session,
        key=key,
        community_id=member.community_id,
        kind=kind,
        platform=address[0],
        conversation=address[1],
        reply=reply,
        due_at=due_at,
        member_id=member.id,
    )


def split_target(target: str) -> tuple[str, str] | None:
    """A channel or group of a community setting (``announce_channels``) as ``(platform, id)``.

    ``slack:C123`` and ``wechat:123@chatroom`` say their platform; a bare id is read by its shape (WeChat
    rooms end in ``@chatroom``, Slack channel ids start with C, G or D); ``None`` when it cannot be told.
    """
    platform, sep, conversation = target.partition(":")
    if sep and platform in ("slack", "wechat", "console"):
        return platform, conversation
    if target.endswith("@chatroom"):
        return "wechat", target
    if target[:1] in ("C", "G", "D") and target[1:].isalnum() and target.isupper():
        return "slack", target
    return None


def button_rows(reply: Reply) -> list[list[str]]:
    """``reply``'s buttons as stored in :attr:`bot.models.Notification.buttons` (``[label, action, value]``
    triples; :func:`reply_of` reads them back)."""
    return [[b.label, b.action, b.value] for b in reply.buttons]


def reply_of(notification: Notification) -> Reply:
    """The :class:`Reply` a notification row stands for (text, language, buttons)."""
    buttons = tuple(Button(label=str(b[0]), action=str(b[1]), value=str(b[2]))
                    for b in notification.buttons or () if len(b) == 3)
    return Reply(text=notification.text, language=notification.language or "en", buttons=buttons,
                 attachment=notification.attachment)
