"""Admin commands: who may run them, their audit trail, and ``/bot config [KEY [VALUE]]`` (``/机器人 配置``),
a community's settings.

Admins are the community's ``admins`` setting (platform ids, bare or as ``platform:id``; the console user
always is). :func:`require_admin` refuses everyone else politely; :func:`audit` records every admin command
in the audit log (:mod:`bot.audit`), in the command's own transaction. The training commands
(``/bot review|label|retrain|rollback|status``) live in :mod:`bot.commands.review` and
:mod:`bot.commands.training`.

``/bot config`` shows every setting, ``/bot config KEY`` one, ``/bot config KEY VALUE`` (or ``KEY=VALUE``)
changes one through :func:`bot.community.set_community_setting`, which validates it. Chinese key names
(时区, 语言, 管理员, ...) are accepted. Values may contain spaces (``digest_cron 0 9 * * 1``).

List settings (admins, announce_channels, listen_channels) take comma-separated items and two shorthands
for chat platforms whose room ids nobody can type (a WeChat room is ``123456@chatroom``): ``here``
(``本群``, ``这里``) is the conversation the command is sent in (written ``platform:id`` in
``announce_channels``, which the scheduler posts to on any platform), ``me`` (``我``, admins only) the
sender as ``platform:id``; a value starting with ``+`` adds its items to the list and one starting with
``-`` removes them (``/bot config listen_channels +here``). A change that changes nothing says so.
"""

from __future__ import annotations

from typing import Any

from bot.audit import record_admin_action
from bot.commands.context import CommandContext
from bot.commands.parsing import parse_args
from bot.commands.replies import say
from bot.community import CONFIG_KEYS, set_community_setting
from bot.errors import PermissionDenied, UsageError
from bot.i18n import tr
from bot.messages import Reply
from bot.notifications import split_target

#: Chinese names of the settings.
ZH_CONFIG_KEYS = {
    "时区": "timezone", "语言": "language", "管理员": "admins", "公告频道": "announce_channels",
    "公告群": "announce_channels", "监听频道": "listen_channels", "监听群": "listen_channels",
    "周报时间": "digest_cron", "置信度下限": "intent_confidence_floor", "匹配阈值": "match_threshold",
    "提醒时间": "reminder_minutes", "活动后引荐": "post_event_intros",
    "问题转交等待": "question_route_after_minutes",
}


def require_admin(ctx: CommandContext, en: str, zh: str) -> None:
    """Refuse a non-admin politely: ``en`` / ``zh`` say what only admins can do.

    Raises:
        PermissionDenied: the sender is not one of the community's admins.
    """
    if not ctx.is_admin:
        raise PermissionDenied(tr(ctx.language, en, zh))


def actor_of(ctx: CommandContext) -> str:
    """Who runs the command, as the audit log and training runs name people: ``platform:user_id``."""
    return f"{ctx.message.platform}:{ctx.message.sender}"


def audit(ctx: CommandContext, action: str, **detail: Any) -> None:
    """Record the admin command ``action`` (``label``, ``config.set``) with JSON-able ``detail`` in the audit
    log, in the command's transaction (:func:`bot.audit.record_admin_action`)."""
    assert ctx.community.id is not None
    record_admin_action(ctx.session, community_id=ctx.community.id, actor=actor_of(ctx), action=action,
                        detail=detail, at=ctx.now)


def config(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot config [KEY [VALUE]]``: show or change the community's settings (admins only). Audited as
    ``config.show`` or ``config.set`` (key, value, previous value).

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: unknown key or invalid value (the message says why).
    """
    require_admin(ctx, "Only community admins can see or change the bot's settings.",
                  "只有社区管理员可以查看或修改机器人设置。")
    words = [t.text for t in parse_args(args, language=ctx.language).positionals]
    if not words:
        audit(ctx, "config.show")
        return [_show(ctx, CONFIG_KEYS)]
    raw_key, _, inline = words[0].partition("=")
    key = ZH_CONFIG_KEYS.get(raw_key, raw_key.lower().replace("-", "_"))
    if key not in CONFIG_KEYS:
        known = ", ".join(CONFIG_KEYS)
        raise UsageError(tr(ctx.language, f"Unknown setting {raw_key!r}. Known settings: {known}.",
                            f"未知设置「{raw_key}」。可用的设置：{known}。"))
    value = " ".join([inline, *words[1:]] if inline else words[1:]).strip()
    if not value:
        audit(ctx, "config.show", key=key)
        return [_show(ctx, (key,))]
    previous = getattr(ctx.settings, key)
    if key in LIST_KEYS:
        value = _list_value(ctx, key, value)
    before = getattr(ctx.settings, key)
    try:
        parsed = set_community_setting(ctx.community, key, value, current=ctx.settings)
    except UsageError as exc:
        if ctx.language != "zh":
            raise
        raise UsageError(f"设置失败：{exc.user_message}") from exc
    ctx.settings = ctx.settings.model_copy(update={key: parsed})
    ctx.session.add(ctx.community)
    ctx.session.flush()
    audit(ctx, "config.set", key=key, value=parsed, previous=previous)
    shown = _format(parsed)
    if parsed == before:
        return [say(ctx, f"No change: {key} = {shown}", f"没有变化：{key} = {shown}")]
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
            # announcements are posted by the scheduler, on any platform: it needs to know which one
            here = ctx.message.conversation
            item = f"{ctx.message.platform}:{here}" if key == "announce_channels" else here
        elif item.lower() in _ME and key == "admins":
            item = f"{ctx.message.platform}:{ctx.message.sender}"
        if item and key == "announce_channels" and split_target(item) is None:
            raise UsageError(tr(ctx.language,
                                f"I cannot tell which platform {item!r} is on: write slack:C123 or "
                                "wechat:123@chatroom, or send `+here` in the channel or group itself.",
                                f"无法判断「{item}」属于哪个平台：请写成 slack:C123 或 wechat:123@chatroom，"
                                "或在那个频道/群里发送 `+本群`。"))
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
    return "auto" if value is None else str(value)  # match_threshold: the model's calibrated default
