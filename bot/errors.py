"""The one root exception of community-bot and its few subclasses.

Every error a user can cause carries a short, helpful ``user_message`` (what went wrong and what to do);
logs get the traceback. Adapters catch :class:`CommunityBotError` and show ``user_message``; anything else
becomes a generic apology, never a crash of the bot.
"""

from __future__ import annotations


class CommunityBotError(Exception):
    """Root of every error the bot raises on purpose.

    Args:
        message: the text shown to the user (and logged); say what to do about it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


class UsageError(CommunityBotError):
    """A command was malformed: unknown flag, unbalanced quote, missing argument, bad value."""


class NotFoundError(CommunityBotError):
    """A referenced row (event, resource, member, community) does not exist."""


class PermissionDenied(CommunityBotError):
    """The sender may not run this command (e.g. an admin command from a non-admin)."""


class ImportFormatError(CommunityBotError):
    """An import file cannot be read or its columns cannot be mapped; the message names what to pass."""


class ModelError(CommunityBotError):
    """A model cannot be loaded, trained or used (missing files, label mismatch, wrong dimension)."""
