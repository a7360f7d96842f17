"""``/privacy show``, ``/privacy export`` and ``/privacy forget [confirm]`` (``/隐私 查看``, ``/隐私 导出``,
``/隐私 删除 [确认]``): a member's own data (:mod:`bot.privacy`).

* ``show`` answers privately with a readable summary: the profile, the consents, and per kind of data how
  much is stored and why (the RSVPs with event titles and the latest messages listed).
* ``export`` writes everything :func:`bot.privacy.member_data` returns as a JSON file and answers privately
  with it as the reply's ``attachment`` (Slack uploads it). The core does not know the data directory, so
  the file goes to a ``privacy-exports`` folder under the system temp directory (:func:`export_dir`; the
  folder is readable by its owner only, files are ``0600``, and exports older than
  :data:`EXPORT_KEEP` are deleted at the next export). On the console the reply names the file; on
  platforms that cannot send files (WeChat) the reply carries the summary of ``show`` instead.
* ``forget`` only explains what would be removed and asks for ``/privacy forget confirm`` (``/隐私 删除
  确认``), which deletes the member (:func:`bot.privacy.forget_member`) and answers what was removed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.commands.context import CommandContext
from bot.commands.replies import say
from bot.errors import UsageError
from bot.i18n import tr
from bot.messages import Reply
from bot.privacy import forget_member, member_data

#: Words that confirm ``/privacy forget``.
CONFIRM_WORDS = frozenset({"confirm", "yes", "确认", "确定"})
#: Exports older than this are deleted from :func:`export_dir` when a new export is written.
EXPORT_KEEP = timedelta(days=1)
#: How many of the latest messages ``/privacy show`` quotes.
SHOWN_MESSAGES = 5
#: Platforms whose adapters upload a reply's attachment.
UPLOADING_PLATFORMS = frozenset({"slack"})

_CONSENTS = (("consent_suggest", "Suggested to other members", "被推荐给其他成员"),
             ("consent_digest", "Personal digest", "个人周报"),
             ("consent_quote", "May be quoted", "可以被引用"),
             ("consent_event_alerts", "Alerts of matching events", "匹配活动提醒"),
             ("consent_questions", "Asked questions you could answer", "接收可能会答的问题"))
_SECTIONS = (("accounts", "Linked accounts", "绑定的账号"), ("rsvps", "RSVPs", "报名"),
             ("messages", "Logged messages", "记录的消息"),
             ("notifications", "Notifications to you", "发给你的通知"),
             ("introductions", "Introductions", "引荐"),
             ("questions", "Questions passed to you", "转给你的问题"),
             ("resources", "Resources you shared", "你分享的资源"),
             ("events_organised", "Events you organise", "你组织的活动"))
_PROFILE = (("bio", "Bio", "简介"), ("skills", "Skills", "技能"), ("offers", "Offers", "能提供"),
            ("needs", "Needs", "需要"), ("location", "Location", "地点"), ("languages", "Languages", "语言"),
            ("timezone", "Time zone", "时区"), ("url", "Link", "网址"))


def _no_args(ctx: CommandContext, args: str, en: str, zh: str) -> None:
    if args.strip():
        raise UsageError(tr(ctx.language, f"{en} takes no arguments.", f"{zh} 不需要参数。"))


def _summary(lang: str, data: dict[str, Any]) -> str:
    """The readable summary of :func:`bot.privacy.member_data` in ``lang``."""
    colon = tr(lang, ": ", "：")
    yes, no = tr(lang, "yes", "是"), tr(lang, "no", "否")
    why = data["why"]
    profile = data["profile"]
    lines = [tr(lang, f"What the bot stores about {profile['display_name']}",
                f"机器人保存的关于 {profile['display_name']} 的数据")]
    lines.append(tr(lang, "Profile", "资料") + f" ({why['profile'][lang if lang == 'zh' else 'en']})")
    filled = [(en, zh, profile[field]) for field, en, zh in _PROFILE if profile[field]]
    lines += [f"  {tr(lang, en, zh)}{colon}{value}" for en, zh, value in filled] or [
        "  " + tr(lang, "(empty)", "（空）")]
    lines.append(tr(lang, "Consents", "授权") + f" ({why['consents'][lang if lang == 'zh' else 'en']})")
    consents = data["consents"]
    lines += [f"  {tr(lang, en, zh)}{colon}{yes if consents[field] else no}" for field, en, zh in _CONSENTS]
    lines.append(f"  {tr(lang, 'Introductions', '引荐')}{colon}{no if consents['intro_opt_out'] else yes}")
    for section, en, zh in _SECTIONS:
        rows = data[section]
        lines.append(f"{tr(lang, en, zh)}{colon}{len(rows)} ({why[section][lang if lang == 'zh' else 'en']})")
        if section == "accounts":
            lines += [f"  {r['platform']}:{r['user_id']}" for r in rows]
        elif section == "rsvps":
            lines += [f"  {r['event']} ({r['starts_at'][:10]}){colon}{r['status']}" for r in rows]
        elif section == "messages":
            lines += [f"  {r['at'][:16].replace('T', ' ')}  {r['text'][:80]}"
                      for r in rows[-SHOWN_MESSAGES:]]
    lines.append(tr(lang, "Send /privacy export for all of it as a file, /privacy forget to delete it.",
                    "发送 /隐私 导出 获取全部数据文件，发送 /隐私 删除 删除这些数据。"))
    return "\n".join(lines)


def show(ctx: CommandContext, args: str) -> list[Reply]:
    """``/privacy show``: a private, readable summary of what is stored about the sender and why."""
    _no_args(ctx, args, "/privacy show", "/隐私 查看")
    data = member_data(ctx.session, ctx.member)
    return [Reply(text=_summary(ctx.language, data), language=ctx.language, private=True)]


def export_dir() -> Path:
    """``<system temp>/privacy-exports``, created (owner-only) if needed."""
    folder = Path(tempfile.gettempdir()) / "privacy-exports"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _prune(folder: Path) -> None:
    cutoff = time.time() - EXPORT_KEEP.total_seconds()
    for old in folder.glob("member-*.json"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


def export(ctx: CommandContext, args: str) -> list[Reply]:
    """``/privacy export``: everything stored about the sender as a JSON file (see the module docstring for
    where the file goes and what platforms without uploads get)."""
    _no_args(ctx, args, "/privacy export", "/隐私 导出")
    data = member_data(ctx.session, ctx.member)
    folder = export_dir()
    _prune(folder)
    stamp = ctx.now.strftime("%Y%m%dT%H%M%SZ")
    fd, name = tempfile.mkstemp(prefix=f"member-{ctx.member.id}-{stamp}-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=2)
    counts = ", ".join(f"{len(data[s])} {en.lower()}" for s, en, _ in _SECTIONS)
    counts_zh = "，".join(f"{zh} {len(data[s])} 条" for s, _, zh in _SECTIONS)
    platform = ctx.message.platform
    if platform in UPLOADING_PLATFORMS:
        text = tr(ctx.language, f"Your data, as JSON ({counts}).", f"你的数据（JSON 文件；{counts_zh}）。")
        return [Reply(text=text, language=ctx.language, private=True, attachment=name)]
    if platform == "console":
        return [Reply(text=tr(ctx.language, f"Your data was written to {name} ({counts}).",
                              f"你的数据已写入 {name}（{counts_zh}）。"),
                      language=ctx.language, private=True, attachment=name)]
    note = tr(ctx.language, "This platform cannot send files, so here is the summary of your data.\n",
              "此平台无法发送文件，以下是你的数据摘要。\n")
    return [Reply(text=note + _summary(ctx.language, data), language=ctx.language, private=True,
                  attachment=name)]


def forget(ctx: CommandContext, args: str) -> list[Reply]:
    """``/privacy forget``: explains and asks for confirmation; ``/privacy forget confirm`` (``/隐私 删除
    确认``) deletes the sender's data (:func:`bot.privacy.forget_member`) and says what was removed.

    Raises:
        UsageError: an argument other than a confirmation word.
    """
    word = args.strip().lower()
    if not word:
        return [say(ctx,
                    "This deletes your profile, consents, linked accounts, RSVPs, logged messages, "
                    "notifications, introductions and the questions passed to you; you will never be "
                    "suggested again. Events you organise and resources you shared stay, without your name. "
                    "It cannot be undone. To go ahead, send: /privacy forget confirm",
                    "这将删除你的资料、授权、绑定的账号、报名、记录的消息、通知、引荐和转给你的问题，"
                    "你也不会再被推荐给他人。你组织的活动和分享的资源会保留，但不再关联到你。此操作无法撤销。"
                    "确定要删除，请发送：/隐私 删除 确认", private=True)]
    if word not in CONFIRM_WORDS:
        raise UsageError(tr(ctx.language, "To delete your data, send /privacy forget confirm.",
                            "要删除你的数据，请发送 /隐私 删除 确认。"))
    counts = forget_member(ctx.session, ctx.member, ctx.now)
    en = ", ".join(f"{counts[k]} {label}" for k, label in (
        ("accounts", "linked accounts"), ("rsvps", "RSVPs"), ("messages", "logged messages"),
        ("notifications", "notifications"), ("introductions", "introductions"),
        ("questions", "questions passed to you")))
    zh = "，".join(f"{label} {counts[k]} 条" for k, label in (
        ("accounts", "绑定账号"), ("rsvps", "报名"), ("messages", "消息记录"), ("notifications", "通知"),
        ("introductions", "引荐"), ("questions", "转给你的问题")))
    kept_en = kept_zh = ""
    if counts["events_unlinked"] or counts["resources_unlinked"]:
        kept_en = (f" Kept without your name: {counts['events_unlinked']} events, "
                   f"{counts['resources_unlinked']} resources.")
        kept_zh = (f"保留但不再关联到你：活动 {counts['events_unlinked']} 个，"
                   f"资源 {counts['resources_unlinked']} 个。")
    return [say(ctx, f"Done: your profile and consents are deleted, with {en}.{kept_en} "
                     "If you write to the bot again, it starts a new, empty profile that is not suggested to "
                     "anyone.",
                f"已删除你的资料和授权，以及{zh}。{kept_zh}如果你再次给机器人发消息，"
                "会建立一份新的空白资料，不会被推荐给任何人。", private=True)]
