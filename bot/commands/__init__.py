"""The platform-neutral command layer: ``/event``, ``/rsvp``, ``/profile``, ``/resource``, ``/bot config``,
``/help`` and their Chinese aliases (``/活动``, ``/报名``, ``/资料``, ``/资源``, ``/机器人``, ``/帮助``).

The router calls :func:`is_command` and :func:`run_command` with a :class:`CommandContext`.
"""

from bot.commands.context import CommandContext
from bot.commands.dispatch import is_command, run_command
from bot.commands.rsvp import button_command

__all__ = ["CommandContext", "button_command", "is_command", "run_command"]
