"""Building a command's replies in the context's language."""

from __future__ import annotations

from bot.commands.context import CommandContext
from bot.i18n import tr
from bot.messages import Button, Match, Reply


def say(ctx: CommandContext, en: str, zh: str, *, buttons: tuple[Button, ...] = (),
        matches: tuple[Match, ...] = (), private: bool = False) -> Reply:
    """A :class:`Reply` whose text is ``en`` or ``zh`` according to ``ctx.language``."""
    return Reply(text=tr(ctx.language, en, zh), language=ctx.language, buttons=buttons, matches=matches,
                 private=private)
