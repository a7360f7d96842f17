"""The platform-neutral command layer: ``/event``, ``/rsvp``, ``/profile``, ``/resource``, ``/bot config``,
``/help`` and their Chinese aliases (``/活动``, ``/报名``, ``/资料``, ``/资源``, ``/机器人``, ``/帮助``).

The router calls :func:`is_command` and :func:`run_command` with a :class:`CommandContext`.
"""

from bot.commands import intro, rsvp
from bot.commands.context import CommandContext
from bot.commands.dispatch import is_command, run_command


def button_command(action: str, value: str) -> str | None:
    """The command text a button press stands for, for platforms that render buttons (RSVP:
    ``/rsvp 3 yes``; introductions: ``/intro yes 7``), else ``None`` (feedback buttons state an intent
    instead; the answer button opens a form on Slack)."""
    return rsvp.button_command(action, value) or intro.button_command(action, value)


__all__ = ["CommandContext", "button_command", "is_command", "run_command"]
