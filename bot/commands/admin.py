"""``/bot config [KEY [VALUE]]`` (``/机器人 配置``): a community's settings, for its admins only.

``/bot config`` shows every setting, ``/bot config KEY`` one, ``/bot config KEY VALUE`` (or ``KEY=VALUE``)
changes one through :func:`bot.community.set_community_setting`, which validates it. Chinese key names
(时区, 语言, 管理员, ...) are accepted. Values may contain spaces (``digest_cron 0 9 * * 1``).

List settings (admins, announce_channels, listen_channels) take comma-separated items and two shorthands
for chat platforms whose room ids nobody can type (a WeChat room is ``123456@chatroom``): ``here``
(``本群``, ``这里``) is the conversation the command is sent in, ``me`` (``我``) the sender as
``platform:id``; a value starting with ``+`` adds its items to the list and one starting with ``-`` removes
them (``/bot config listen_channels +here``).
"""

from __future__ import annotations

from typing import Any

from bot.commands.context import CommandContext
from bot.commands.parsing import parse_args
from bot.commands.replies import say
from bot.community import CONFIG_KEYS, set_community_setting
from bot.errors import PermissionDenied, UsageError
from bot.i18n import tr
from bot.messages import Reply

#: Chinese names of the settings.
ZH_CONFIG_KEYS = {
    "时区": "timezone", "语言": "language", "管理员": "admins", "公告频道": "announce_channels",
    "公告群": "announce_channels", "监听频道": "listen_channels", "监听群": "listen_channels",
    "周报时间": "digest_cron", "置信度下限": "intent_confidence_floor", "匹配阈值": "match_threshold",
    "提醒时间": "reminder_minutes", "活动后引荐": "post_event_intros",
    "问题转交等待": "question_route_after_minutes",
}


def config(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot config [KEY [VALUE]]``: show or change the community's settings (admins only).

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: unknown key or invalid value (the message says why).
    """
    if not ctx.is_admin:
        raise PermissionDenied(tr(ctx.language, "Only community admins can see or change the bot's settings.",
                                  "只有社区管理员可以查看或修改机器人设置。"))
    words = [t.text for t in parse_args(args, language=ctx.language).positionals]
    if not words:
        return [_show(ctx, CONFIG_KEYS)]
    raw_key, _, inline = words[0].partition("=")
    key = ZH_CONFIG_KEYS.get(raw_key, raw_key.lower().replace("-", "_"))
    if key not in CONFIG_KEYS:
        known = ", ".join(CONFIG_KEYS)
        raise UsageError(tr(ctx.language, f"Unknown setting {raw_key!r}. Known settings: {known}.",
                            f"未知设置「{raw_key}」。可用的设置：{known}。"))
    value = " ".join([inline, *words[1:]] if inline else words[1:]).strip()
    if not value:
        return [_show(ctx, (key,))]
    if key in LIST_KEYS:
        value = _list_value(ctx, key, value)
    try:
        parsed = set_community_setting(ctx.community, key, value, current=ctx.settings)
    except UsageError as exc:
        if ctx.language != "zh":
            raise
        raise UsageError(f"设置失败：{exc.user_message}") from exc
    ctx.settings = ctx.settings.model_copy(update={key: parsed})
    ctx.session.add(ctx.community)
    ctx.session.flush()
    shown = _format(parsed)
    return [say(ctx, f"Setting changed: {key} = {shown}", f"设置已更新：{key} = {shown}")]


#: Settings that hold lists of ids.
LIST_KEYS = frozenset({"admins", "announce_channels", "listen_channels"})
_HERE = frozenset({"here", "this", "本群", "这里", "此群", "本频道"})
_ME = frozenset({"me", "我"})


def _list_value(ctx: CommandContext, key: str, value: str) -> str:
    """``value`` of a list setting with ``here``/``me`` resolved and ``+``/``-`` applied to the current list,
    as the comma-separated text :func:`bot.community.set_community_setting` validates."""
    mode = value[0] if value[0] in "+-" else ""
    items = []
    for item in value.lstrip("+-").replace("，", ",").split(","):
        item = item.strip()
        if item.lower() in _HERE:
            item = ctx.message.conversation
        elif item.lower() in _ME:
            item = f"{ctx.message.platform}:{ctx.message.sender}"
        if item:
            items.append(item)
    current: list[str] = list(getattr(ctx.settings, key))
    if mode == "+":
        items = current + [i for i in items if i not in current]
    elif mode == "-":
        items = [i for i in current if i not in items]
    return ", ".join(items) or " "


def _show(ctx: CommandContext, keys: tuple[str, ...]) -> Reply:
    values = ctx.settings.model_dump()
    lines = [f"{key} = {_format(values[key])}" for key in keys]
    head = tr(ctx.language, "Settings of this community:", "本社区的设置：")
    text = "\n".join([head, *lines]) if len(keys) > 1 else lines[0]
    return Reply(text=text, language=ctx.language, private=True)


def _format(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)
