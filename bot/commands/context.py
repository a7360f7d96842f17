"""What a command handler receives: the database session, the community, the sender and the message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.community import CommunitySettings
from bot.messages import IncomingMessage
from bot.models import Community, Member
from bot.ports import Matcher, Retrainer


@dataclass(slots=True)
class CommandContext:
    """Everything a command needs; built by the router for each command message.

    Attributes:
        session: an open database session; the router commits after the handler returns.
        community: the community row (``community.id`` is set).
        settings: the community's effective settings (time zone, language, admins, thresholds).
        member: the sender's member row (created on first contact).
        message: the incoming message.
        language: the reply language (``en``/``zh``), already chosen from the message and fallbacks.
        is_admin: the sender may run admin commands (``/bot ...``); the console user always may.
        now: the current time (aware, UTC) — injected so tests can fix it.
        matcher: the matcher, for commands that search (``/resource list QUERY``); may be ``None``.
        retrainer: starts ``/bot retrain`` runs in a background worker; ``None`` where this process has
            none (the console without a worker, tests), and the command says so.
    """

    session: Session
    community: Community
    settings: CommunitySettings
    member: Member
    message: IncomingMessage
    language: str
    is_admin: bool
    now: datetime
    matcher: Matcher | None = None
    retrainer: Retrainer | None = None
