"""Slack OAuth persistence in the bot's database: slack-sdk's installation store and OAuth state store.

One row per workspace (:class:`bot.models.SlackInstallation`), keyed by team id, holding the bot token
OAuth handed over and the community the workspace belongs to (created on first install, named
``slack:<team id>``, which an organiser may rename with ``communitybot community``); the one-time OAuth
``state`` values (:class:`bot.models.SlackOAuthState`). Both live in the database so that every process of
a deployment sees the same installations and can finish an install another process started.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.community import community_settings, get_or_create_community
from bot.db import session_scope
from bot.models import Community, SlackInstallation, SlackOAuthState, utcnow
from bot.settings import Settings

log = logging.getLogger(__name__)


def community_name_for(team_id: str) -> str:
    """The name of the community a newly installed workspace gets: ``slack:<team id>``."""
    return f"slack:{team_id}"


class DatabaseInstallationStore(InstallationStore):
    """slack-sdk's :class:`InstallationStore` over :class:`bot.models.SlackInstallation` (bot tokens only).

    Args:
        engine: the bot's database.
        settings: deployment settings (defaults of communities created on install).
    """

    def __init__(self, *, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @property
    def logger(self) -> logging.Logger:
        return log

    def save(self, installation: Installation) -> None:
        """Store (or refresh) a workspace's installation; creates its community on the first install."""
        team_id = installation.team_id or ""
        if not team_id or not installation.bot_token:
            raise ValueError("only workspace installs with a bot token are supported")
        with session_scope(self._engine) as session:
            row = session.exec(select(SlackInstallation).where(SlackInstallation.team_id == team_id)).first()
            if row is None:
                community = get_or_create_community(
                    session, community_name_for(team_id), settings=self._settings
                )
                assert community.id is not None
                if installation.user_id and not community_settings(community, settings=self._settings).admins:
                    # whoever installed the app in a new workspace administers its community
                    community.settings = {**(community.settings or {}), "admins": [installation.user_id]}
                    session.add(community)
                row = SlackInstallation(team_id=team_id, community_id=community.id)
            row.enterprise_id = installation.enterprise_id
            row.team_name = installation.team_name or ""
            row.app_id = installation.app_id or ""
            row.bot_token = installation.bot_token
            row.bot_id = installation.bot_id or ""
            row.bot_user_id = installation.bot_user_id or ""
            row.bot_scopes = ",".join(installation.bot_scopes or [])
            row.installer_user_id = installation.user_id or ""
            row.installed_at = utcnow()
            row.revoked_at = None
            session.add(row)
        log.info("slack: workspace %s (%s) installed the app", team_id, installation.team_name)

    def save_bot(self, bot: Bot) -> None:
        """Bots are saved with their installation (:meth:`save`)."""

    def find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        row = self.active(team_id or "")
        return None if row is None else Bot(**_bot_fields(row))

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = self.active(team_id or "")
        return None if row is None else Installation(**_bot_fields(row), user_id=row.installer_user_id)

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.revoke(team_id or "")

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        self.revoke(team_id or "")

    def active(self, team_id: str) -> SlackInstallation | None:
        """The workspace's installation unless it was revoked; ``None`` otherwise."""
        with session_scope(self._engine) as session:
            return session.exec(
                select(SlackInstallation).where(
                    SlackInstallation.team_id == team_id, col(SlackInstallation.revoked_at).is_(None)
                )
            ).first()

    def revoke(self, team_id: str) -> bool:
        """Mark the workspace's installation revoked (uninstall, tokens revoked); ``True`` if it was
        active."""
        with session_scope(self._engine) as session:
            row = session.exec(select(SlackInstallation).where(SlackInstallation.team_id == team_id)).first()
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = utcnow()
            row.bot_token = ""  # a revoked token is useless; do not keep it
            session.add(row)
        return True

    def served(self, team_id: str) -> tuple[SlackInstallation, str] | None:
        """The workspace's active installation and the name of its community, in one read; ``None`` when
        it is not installed (or was revoked)."""
        with session_scope(self._engine) as session:
            found = session.exec(
                select(SlackInstallation, Community)
                .join(Community, col(Community.id) == col(SlackInstallation.community_id))
                .where(SlackInstallation.team_id == team_id, col(SlackInstallation.revoked_at).is_(None))
            ).first()
            return None if found is None else (found[0], found[1].name)


    def team_of(self, community: str) -> str | None:
        """The team id of the active installation serving ``community`` (by name), else ``None``."""
        with session_scope(self._engine) as session:
            found = session.exec(
                select(SlackInstallation.team_id)
                .join(Community, col(Community.id) == col(SlackInstallation.community_id))
                .where(Community.name == community, col(SlackInstallation.revoked_at).is_(None))
            ).first()
            return None if found is None else str(found)


def _bot_fields(row: SlackInstallation) -> dict[str, Any]:
    """The fields slack-sdk's ``Bot`` and ``Installation`` share, from an installation row."""
    return {
        "app_id": row.app_id,
        "enterprise_id": row.enterprise_id,
        "team_id": row.team_id,
        "team_name": row.team_name,
        "bot_token": row.bot_token,
        "bot_id": row.bot_id,
        "bot_user_id": row.bot_user_id,
        "bot_scopes": row.bot_scopes,
        "installed_at": row.installed_at,
    }


class DatabaseOAuthStateStore(OAuthStateStore):
    """slack-sdk's :class:`OAuthStateStore` over :class:`bot.models.SlackOAuthState`: one-time states that
    expire after ``expiration_seconds`` (10 minutes, Slack's recommendation)."""

    def __init__(self, *, engine: Engine, expiration_seconds: int = 600) -> None:
        self._engine = engine
        self._ttl = timedelta(seconds=expiration_seconds)

    @property
    def logger(self) -> logging.Logger:
        return log

    def issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        with session_scope(self._engine) as session:
            for stale in session.exec(select(SlackOAuthState).where(SlackOAuthState.expires_at < now)).all():
                session.delete(stale)
            session.add(SlackOAuthState(state=state, expires_at=now + self._ttl))
        return state

    def consume(self, state: str) -> bool:
        with session_scope(self._engine) as session:
            row = session.get(SlackOAuthState, state)
            if row is None:
                return False
            valid = row.expires_at >= datetime.now(UTC)
            session.delete(row)
        return valid
