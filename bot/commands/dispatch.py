"""Running a command message: recognise it, resolve it, run its handler, turn user errors into replies."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.commands.context import CommandContext
from bot.commands.parsing import normalise_quotes
from bot.commands.registry import Command, resolve
from bot.errors import CommunityBotError, UsageError
from bot.i18n import tr
from bot.messages import Reply

#: A slash (ASCII or full-width) then a word starting with a letter or Han character, ended by a space or
#: the end of the text: ``/event``, ``／活动``, ``/foo`` yes; ``/usr/bin``, ``/:)``, ``/ 2`` no.
_COMMAND = re.compile(r"\s*[/／](?=[^\W\d_])[^\s/／]+(?:\s|$)")


def is_command(text: str) -> bool:
    """Whether ``text`` is a command: a slash, then a word (a known command or not), e.g. ``/活动``."""
    return _COMMAND.match(text) is not None


def run_command(ctx: CommandContext, text: str) -> list[Reply]:
    """Run the command ``text`` (``/event create "Title" 2027-05-10``) and return its replies.

    Replies are in ``ctx.language``. User errors never raise: an unknown command answers with a pointer to
    ``/help``; a :class:`~bot.errors.UsageError` answers with its message and the command's usage line
    (the group's lines when the command was implied, e.g. ``/event foo``); other
    :class:`~bot.errors.CommunityBotError` s (not found, permission denied) answer with their message.
    Changes are flushed, never committed (the caller commits). Programming errors propagate.
    """
    lang = ctx.language
    text = normalise_quotes(text)
    resolved = resolve(text)
    if resolved is None:
        name = text.strip().split()[0] if text.strip() else "/"
        return [Reply(text=tr(lang, f"Unknown command {name}. Send /help to see the commands.",
                              f"未知命令 {name}。发送 /帮助 查看可用命令。"), language=lang)]
    if resolved.run is None:
        return [Reply(text=_usage(lang, resolved.commands), language=lang)]
    try:
        return resolved.run.handler(ctx, resolved.args)
    except UsageError as exc:
        shown = resolved.commands if resolved.group_usage else (resolved.run,)
        return [Reply(text=f"{exc.user_message}\n{_usage(lang, shown)}", language=lang)]
    except CommunityBotError as exc:
        return [Reply(text=exc.user_message, language=lang)]


def _usage(language: str, commands: Sequence[Command]) -> str:
    """``Usage: LINE`` for one command, ``Usage:`` and one line per command for several."""
    label = tr(language, "Usage:", "用法：")
    lines = [c.usage(language) for c in commands]
    if len(lines) == 1:
        return f"{label}{'' if language == 'zh' else ' '}{lines[0]}"
    return "\n".join([label, *lines])
