"""``/profile set KEY: VALUE; KEY: VALUE`` and ``/profile show`` (``/资料 设置``, ``/资料``).

Keys are English or Chinese (:data:`PROFILE_KEYS`); pairs are separated by ``;``, ``；`` or new lines and
keys from values by ``:`` or ``：`` (the first one, so URLs in values survive). An empty value clears the
field. Telling the bot what you offer, need, know or do (``offers``/``needs``/``skills``/``bio``) turns on
``consent_suggest``: the member expects to be suggested to others.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.commands.context import CommandContext
from bot.commands.replies import say
from bot.errors import UsageError
from bot.i18n import tr
from bot.messages import Reply

#: Every accepted key spelling -> the :class:`bot.models.Member` field it sets.
PROFILE_KEYS: dict[str, str] = {
    "bio": "bio", "about": "bio", "简介": "bio", "介绍": "bio",
    "skills": "skills", "skill": "skills", "技能": "skills",
    "offers": "offers", "offer": "offers", "能提供": "offers", "提供": "offers",
    "needs": "needs", "need": "needs", "需要": "needs",
    "location": "location", "city": "location", "地点": "location", "城市": "location",
    "languages": "languages", "language": "languages", "语言": "languages",
    "timezone": "timezone", "tz": "timezone", "时区": "timezone",
}
#: Fields shown by ``/profile show``, with their English and Chinese labels, in order.
FIELDS = (("bio", "Bio", "简介"), ("skills", "Skills", "技能"), ("offers", "Offers", "能提供"),
          ("needs", "Needs", "需要"), ("location", "Location", "地点"), ("languages", "Languages", "语言"),
          ("timezone", "Time zone", "时区"))
#: Fields that, once filled, mean the member wants to be suggested to others.
_SUGGEST_FIELDS = frozenset({"bio", "skills", "offers", "needs"})
_PAIRS = re.compile(r"[;；\n]")
_KEY_VALUE = re.compile(r"\s*([^:：]*?)\s*[:：]\s*(.*)", re.DOTALL)


def _keys_help(language: str) -> str:
    return tr(language, "Keys: bio, skills, offers, needs, location, languages, timezone.",
              "可用的键：简介、技能、能提供、需要、地点（城市）、语言、时区。")


def parse_profile_pairs(text: str, *, language: str = "en") -> dict[str, str]:
    """``"offers: angel investing; needs: a designer"`` -> ``{"offers": "angel investing", "needs": ...}``.

    Raises:
        UsageError: no pair, a part without ``:``, an unknown key, or a time zone that is not an IANA name.
    """
    values: dict[str, str] = {}
    for part in _PAIRS.split(text):
        if not part.strip():
            continue
        match = _KEY_VALUE.fullmatch(part)
        field = PROFILE_KEYS.get(match.group(1).lower()) if match else None
        if match is None or field is None:
            key = match.group(1) if match else part.strip()
            raise UsageError(tr(language, f"Unknown profile key {key!r}. ", f"未知的资料键「{key}」。")
                             + _keys_help(language))
        values[field] = match.group(2).strip()
    if not values:
        example = tr(language, "Say what to set, e.g. offers: angel investing; needs: a designer. ",
                     "请写出要设置的内容，例如 能提供：天使投资；需要：设计师。")
        raise UsageError(example + _keys_help(language))
    tz = values.get("timezone")
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise UsageError(tr(language, f"Unknown time zone {tz!r}; use a name like Asia/Shanghai.",
                                f"未知时区「{tz}」，请使用 Asia/Shanghai 这样的名称。")) from exc
    return values


def set_profile(ctx: CommandContext, args: str) -> list[Reply]:
    """``/profile set KEY: VALUE; ...``: updates ``ctx.member`` and shows the profile."""
    values = parse_profile_pairs(args, language=ctx.language)
    member = ctx.member
    for field, value in values.items():
        setattr(member, field, value)
    if any(values.get(f) for f in _SUGGEST_FIELDS):
        member.consent_suggest = True
    member.updated_at = ctx.now
    ctx.session.add(member)
    ctx.session.flush()
    en_fields = ", ".join(values)
    zh_fields = "、".join(label for field, _, label in FIELDS if field in values)
    return [say(ctx, f"Profile updated ({en_fields}).\n{_profile_text(ctx)}",
                f"资料已更新（{zh_fields}）。\n{_profile_text(ctx)}", private=True)]


def show_profile(ctx: CommandContext, args: str) -> list[Reply]:
    """``/profile show``: the sender's profile (shown only to them where the platform can)."""
    if args.strip():
        raise UsageError(tr(ctx.language, "/profile show takes no arguments.", "/资料 不需要参数。"))
    return [Reply(text=_profile_text(ctx), language=ctx.language, private=True)]


def _profile_text(ctx: CommandContext) -> str:
    member, lang = ctx.member, ctx.language
    unset = tr(lang, "(not set)", "（未填写）")
    lines = [tr(lang, f"Profile of {member.display_name}", f"{member.display_name} 的资料")]
    for field, en, zh in FIELDS:
        lines.append(f"{tr(lang, en, zh)}{tr(lang, ': ', '：')}{getattr(member, field) or unset}")
    suggested = tr(lang, "yes", "是") if member.consent_suggest else tr(lang, "no", "否")
    lines.append(tr(lang, f"Suggested to members who need what you offer: {suggested}",
                    f"会被推荐给有需要的成员：{suggested}"))
    return "\n".join(lines)
