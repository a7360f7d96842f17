"""``/help [COMMAND]`` (``/帮助 [命令]``): the command overview and the usage of one command or group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.commands.context import CommandContext
from bot.i18n import tr
from bot.messages import Reply

if TYPE_CHECKING:
    from bot.commands.registry import Command


def help_overview(ctx: CommandContext, commands: Sequence[Command]) -> Reply:
    """Every listed command with its usage line and what it does, in ``ctx.language``."""
    lang = ctx.language
    lines = [tr(lang, "Commands:", "命令：")]
    lines += [f"{c.usage(lang)} — {tr(lang, c.summary_en, c.summary_zh)}" for c in commands]
    lines.append(tr(lang, "Dates may be 2027-05-10 18:00, 'next Friday 7pm' or 下周五晚上7点. "
                          "/help COMMAND shows one command.",
                    "日期可以写 2027-05-10 18:00、下周五晚上7点 或 next Friday 7pm。"
                    "/帮助 命令 查看某个命令的用法。"))
    return Reply(text="\n".join(lines), language=lang)


def help_topic(ctx: CommandContext, topic: str, commands: Sequence[Command]) -> Reply:
    """The usage lines of ``commands`` (what ``topic`` named), or a pointer to ``/help`` if none."""
    lang = ctx.language
    if not commands:
        return Reply(text=tr(lang, f"There is no command {topic!r}. Send /help for the list.",
                             f"没有「{topic}」这个命令。发送 /帮助 查看命令列表。"), language=lang)
    lines = [f"{c.usage(lang)} — {tr(lang, c.summary_en, c.summary_zh)}" for c in commands]
    return Reply(text="\n".join(lines), language=lang)
