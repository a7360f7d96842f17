"""The admin audit log: one :class:`bot.models.AdminAction` row per admin command.

Every command an admin runs (settings shown or changed, the review queue read, labels, dismissals,
retrains, rollbacks, status) is recorded in the same transaction as its effect, so a change that is rolled
back leaves no audit row and a committed change always has one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.models import AdminAction, utcnow

#: Longest ``actor`` and ``action`` stored (the columns' lengths).
_ACTOR_CHARS, _ACTION_CHARS = 250, 40


def record_admin_action(
    session: Session,
    *,
    community_id: int,
    actor: str,
    action: str,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AdminAction:
    """Add an audit row and flush it (never commits: the caller's transaction decides).

    Args:
        session: an open session.
        community_id: the community the admin acted in.
        actor: who: ``platform:user_id`` (``slack:U123``); cut to 250 characters.
        action: what, a short dotted name (``label``, ``retrain``, ``config.set``); cut to 40 characters.
        detail: what exactly, as a JSON-able mapping; values JSON cannot hold are stored as their ``str``.
        at: when (aware); default now.

    Returns:
        The flushed row (``id`` set).
    """
    row = AdminAction(
        community_id=community_id,
        actor=actor[:_ACTOR_CHARS],
        action=action[:_ACTION_CHARS],
        detail=json.loads(json.dumps(dict(detail or {}), default=str, ensure_ascii=False)),
        created_at=at or utcnow(),
    )
    session.add(row)
    session.flush()
    return row
