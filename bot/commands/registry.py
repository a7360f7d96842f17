"""The command table: every command, its English and Chinese spellings, usage lines and handler.

A command is spelled without its slash as one or more words (``event create``, ``活动 创建``); English
spellings match case-insensitively and end at a space, Chinese words may also be run together
(``/活动创建``, ``/报名3``). The longest spelling that matches wins. A bare group name (``/活动``,
``/event``) runs the group's default command (``event list``); a group without one (``/bot``) answers
with the usage lines of its commands. Commands of later features are listed so that they answer
"not available yet" instead of "unknown command".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.commands import admin, answer, event, intro, privacy, profile, resource, review, rsvp, training
from bot.commands.context import CommandContext
from bot.commands.help import help_overview, help_topic
from bot.commands.replies import say
from bot.i18n import tr
from bot.messages import Reply

#: A command handler: the context and the argument text after the command's name (quotes normalised).
Handler = Callable[[CommandContext, str], list[Reply]]

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SLASHES = ("/", "／")


@dataclass(frozen=True, slots=True)
class Command:
    """One command.

    Attributes:
        key: canonical English spelling without the slash (``event create``); its first word is the group.
        names: other spellings (``活动 创建``, ``event new``).
        usage_en / usage_zh: the usage line shown on a usage error and by ``/help``.
        summary_en / summary_zh: what the command does, in a few words.
        handler: runs the command.
        listed: shown in the ``/help`` overview (later features are not).
    """

    key: str
    names: tuple[str, ...]
    usage_en: str
    usage_zh: str
    summary_en: str
    summary_zh: str
    handler: Handler
    listed: bool = True

    @property
    def group(self) -> str:
        """The first word of :attr:`key` (``event``)."""
        return self.key.split()[0]

    def usage(self, language: str) -> str:
        """The usage line in ``language``."""
        return tr(language, self.usage_en, self.usage_zh)


@dataclass(frozen=True, slots=True)
class Group:
    """A family of commands sharing a first word (``event``) and its bare spellings (``events``, ``活动``)."""

    key: str
    names: tuple[str, ...]
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a command text refers to.

    Attributes:
        commands: the commands the text names: the one command, or a whole group (``/event``, ``/rsvp``).
        run: the command to run; ``None`` for a group without a default (``/bot``).
        args: the text after the command's name, stripped.
        group_usage: a usage error should show the whole group's usage (the command was implied).
    """

    commands: tuple[Command, ...]
    run: Command | None
    args: str
    group_usage: bool


def _not_available(key: str) -> Handler:
    def handler(ctx: CommandContext, args: str) -> list[Reply]:
        return [say(ctx, f"/{key} is not available yet.", f"/{key} 功能暂未开放。")]

    return handler


def _later(key: str, zh: str, usage_en: str, usage_zh: str) -> Command:
    return Command(key, (zh,), usage_en, usage_zh, "not available yet", "暂未开放", _not_available(key),
                   listed=False)


def _help(ctx: CommandContext, args: str) -> list[Reply]:
    topic = args.strip()
    if not topic:
        return [help_overview(ctx, [c for c in COMMANDS if c.listed])]
    found = resolve("/" + topic.lstrip("/／"))
    return [help_topic(ctx, topic, found.commands if found else ())]


COMMANDS: tuple[Command, ...] = (
    Command("event create", ("event new", "活动 创建", "活动 新建", "活动 发起"),
            '/event create "TITLE" DATE [TIME] [--end DATE TIME] [--where PLACE] [--capacity N] '
            "[--desc TEXT] [--remind 24h,1h]",
            '/活动 创建 "标题" 日期 [时间] [--end 结束时间] [--where 地点] [--capacity 人数] [--desc 说明] '
            "[--remind 1天,1小时]",
            "create an event", "创建活动", event.create_event),
    Command("event edit", ("event update", "活动 修改", "活动 编辑"),
            "/event edit ID [--title TITLE] [--when DATE TIME] [--end DATE TIME] [--where PLACE] "
            "[--capacity N] [--desc TEXT] [--remind 24h,1h]",
            "/活动 修改 编号 [--title 标题] [--when 时间] [--end 结束时间] [--where 地点] [--capacity 人数] "
            "[--desc 说明] [--remind 1天,1小时]",
            "change an event", "修改活动", event.edit_event),
    Command("event cancel", ("活动 取消",), "/event cancel ID", "/活动 取消 编号",
            "cancel an event", "取消活动", event.cancel_event),
    Command("event show", ("event info", "活动 详情", "活动 查看"), "/event show ID", "/活动 详情 编号",
            "an event's details and who is going", "活动详情和报名名单", event.show_event),
    Command("event list", ("活动 列表",), "/event list [--past]", "/活动 [--past]",
            "upcoming events", "近期活动", event.list_events),
    Command("rsvp", ("报名",), "/rsvp ID [yes|no|maybe]", "/报名 编号 [yes|no|maybe]",
            "answer an event (default yes)", "报名参加活动", rsvp.rsvp),
    Command("rsvp cancel", ("取消报名",), "/rsvp cancel ID", "/取消报名 编号",
            "take back your RSVP", "取消报名", rsvp.unrsvp),
    Command("profile set", ("资料 设置", "资料 更新"),
            "/profile set KEY: VALUE; KEY: VALUE (keys: bio, skills, offers, needs, location, languages, "
            "timezone; yes/no: suggest, digest, alerts, questions, intros)",
            "/资料 设置 键：值；键：值（键：简介、技能、能提供、需要、地点、语言、时区；"
            "是/否：推荐、周报、活动提醒、答疑、引荐）",
            "tell members what you offer and need", "填写你能提供和需要的", profile.set_profile),
    Command("profile show", ("资料 查看",), "/profile show", "/资料", "your profile", "查看我的资料",
            profile.show_profile),
    Command("profile link", ("资料 绑定",), "/profile link [CODE]", "/资料 绑定 [验证码]",
            "join your accounts on two platforms (a one-time code)",
            "绑定你在两个平台上的账号（一次性验证码）",
            profile.link_profile),
    Command("resource add", ("resource share", "资源 添加", "资源 分享"),
            '/resource add "TITLE" URL [--tags a,b] [--desc TEXT]',
            '/资源 添加 "标题" 链接 [--tags 标签1,标签2] [--desc 说明]',
            "share a resource", "分享资源", resource.add_resource),
    Command("resource list", ("resource search", "资源 列表", "资源 搜索"), "/resource list [QUERY]",
            "/资源 [关键词]", "latest resources, or search them", "最新资源或搜索资源",
            resource.list_resources),
    Command("bot config", ("机器人 配置", "机器人 设置"), "/bot config [KEY VALUE]", "/机器人 配置 [键 值]",
            "show or change the community's settings (admins)", "查看或修改社区设置（管理员）", admin.config),
    Command("answer", ("回答",), "/answer ID YOUR ANSWER [--private] · /answer ID pass",
            "/回答 编号 你的回答 [--private] · /回答 编号 跳过",
            "answer a question the bot passed to you", "回答机器人转给你的问题", answer.answer),
    Command("intro", ("引荐",), "/intro yes|no|snooze ID · /intro helped ID yes|no",
            "/引荐 接受|拒绝|暂停 编号 · /引荐 有帮助 编号 是|否",
            "answer an introduction the bot proposed", "回复机器人提议的引荐", intro.intro_command),
    Command("help", ("帮助",), "/help [COMMAND]", "/帮助 [命令]", "this help", "查看帮助", _help),
    Command("privacy show", ("隐私 查看",), "/privacy show", "/隐私 查看",
            "what the bot stores about you, and why", "机器人保存了你的哪些数据及原因", privacy.show),
    Command("privacy export", ("隐私 导出",), "/privacy export", "/隐私 导出",
            "all your data as a file", "把你的全部数据导出为文件", privacy.export),
    Command("privacy forget", ("隐私 删除",), "/privacy forget [confirm]", "/隐私 删除 [确认]",
            "delete your data (asks to confirm)", "删除你的数据（需确认）", privacy.forget),
    Command("bot review", ("机器人 审核",), "/bot review [N] · /bot review dismiss ID",
            "/机器人 审核 [数量] · /机器人 审核 忽略 编号",
            "messages waiting for review (admins)", "待审核的消息（管理员）", review.review),
    Command("bot label", ("机器人 标注",),
            '/bot label "TEXT" INTENT [--new] · /bot label MESSAGE_ID INTENT [--new] (--new: a new intent)',
            '/机器人 标注 "文本" 意图 [--new] · /机器人 标注 消息编号 意图 [--new]（--new：新意图）',
            "teach the bot what a message means (admins)", "告诉机器人一句话的意图（管理员）", review.label),
    Command("bot retrain", ("机器人 训练",), "/bot retrain [--dry-run]", "/机器人 训练 [--dry-run]",
            "retrain the bot's understanding in the background (admins)", "在后台重新训练机器人（管理员）",
            training.retrain),
    Command("bot rollback", ("机器人 回滚",), "/bot rollback [VERSION]", "/机器人 回滚 [版本]",
            "serve an earlier model version again (admins)", "换回更早的模型版本（管理员）",
            training.rollback),
    Command("bot status", ("机器人 状态",), "/bot status", "/机器人 状态",
            "serving model, review queue, last training (admins)", "当前模型、待审核数量、最近训练（管理员）",
            training.status),
)

GROUPS: tuple[Group, ...] = (
    Group("event", ("events", "活动"), default="event list"),
    Group("profile", ("资料",), default="profile show"),
    Group("resource", ("resources", "资源"), default="resource list"),
    Group("bot", ("机器人",)),
    Group("privacy", ("隐私",)),
)


def _pattern(spelling: str) -> re.Pattern[str]:
    """A regex matching ``spelling`` at the start of a text: words apart, Chinese words maybe run together."""
    words = spelling.split()
    parts = [re.escape(words[0])]
    for before, word in zip(words, words[1:], strict=False):
        parts.append(r"\s*" if _HAN.match(before[-1]) and _HAN.match(word[0]) else r"\s+")
        parts.append(re.escape(word))
    end = "" if _HAN.match(words[-1][-1]) else r"(?=\s|$)"
    return re.compile("".join(parts) + end, re.IGNORECASE)


_BY_KEY = {c.key: c for c in COMMANDS}
_SPELLINGS: tuple[tuple[re.Pattern[str], Command | Group], ...] = (
    *((_pattern(name), c) for c in COMMANDS for name in (c.key, *c.names)),
    *((_pattern(name), g) for g in GROUPS for name in (g.key, *g.names)),
)


def _family(group: str) -> tuple[Command, ...]:
    return tuple(c for c in COMMANDS if c.group == group)


def resolve(text: str) -> Resolved | None:
    """What the command text ``text`` (``/event create ...``, ``／活动``) refers to; ``None`` if unknown.

    ``text`` should already have its quotes normalised (:func:`bot.commands.parsing.normalise_quotes`).
    """
    body = text.strip()
    if not body.startswith(_SLASHES):
        return None
    body = body[1:]
    best: tuple[int, Command | Group] | None = None
    for pattern, target in _SPELLINGS:
        match = pattern.match(body)
        if match and (best is None or match.end() > best[0]):
            best = (match.end(), target)
    if best is None:
        return None
    end, target = best
    args = body[end:].strip()
    if isinstance(target, Command):
        # a one-word command (``rsvp``) also stands for its family (``rsvp cancel``) in /help
        family = _family(target.group) if target.key == target.group else (target,)
        return Resolved(commands=family, run=target, args=args, group_usage=False)
    members = _family(target.key)
    default = _BY_KEY.get(target.default) if target.default else None
    return Resolved(commands=members, run=default, args=args, group_usage=True)
