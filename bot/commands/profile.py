"""``/profile set KEY: VALUE; KEY: VALUE``, ``/profile show`` and ``/profile link [CODE]`` (``/资料 设置``,
``/资料``, ``/资料 绑定``).

Keys are English or Chinese (:data:`PROFILE_KEYS`); pairs are separated by ``;``, ``；`` or new lines and
keys from values by ``:`` or ``：`` (the first one, so URLs in values survive). An empty value clears the
field. Telling the bot what you offer, need, know or do (``offers``/``needs``/``skills``/``bio``) turns on
``consent_suggest``: the member expects to be suggested to others. Opt-ins take yes or no (``digest: yes``,
``周报：否``; keys in :data:`PROFILE_KEYS`, named in replies by :data:`LABELS`). ``/profile link`` joins one
person's accounts on two platforms into one member (:mod:`bot.linking`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import func, select

from bot.commands.context import CommandContext
from bot.commands.replies import say
from bot.community import is_timezone, suggest_timezone
from bot.errors import UsageError
from bot.i18n import tr
from bot.linking import CODE_LENGTH, LINK_CODE_TTL, issue_link_code, normalise_code, redeem_link_code
from bot.messages import Reply
from bot.models import PlatformIdentity, Rsvp

#: Every accepted key spelling -> the :class:`bot.models.Member` field it sets.
PROFILE_KEYS: dict[str, str] = {
    "bio": "bio", "about": "bio", "简介": "bio", "介绍": "bio",
    "skills": "skills", "skill": "skills", "技能": "skills",
    "offers": "offers", "offer": "offers", "能提供": "offers", "提供": "offers",
    "needs": "needs", "need": "needs", "需要": "needs",
    "location": "location", "city": "location", "地点": "location", "城市": "location",
    "languages": "languages", "language": "languages", "语言": "languages",
    "timezone": "timezone", "tz": "timezone", "时区": "timezone",
    "suggest": "consent_suggest", "推荐": "consent_suggest",
    "digest": "consent_digest", "周报": "consent_digest", "个人周报": "consent_digest",
    "alerts": "consent_event_alerts", "活动推荐": "consent_event_alerts", "活动提醒": "consent_event_alerts",
    "提醒": "consent_event_alerts",
    "questions": "consent_questions", "问题": "consent_questions", "答疑": "consent_questions",
    "intros": "intros", "introductions": "intros", "引荐": "intros",
}
#: Opt-ins set with ``/profile set KEY: yes|no`` (``intros`` also takes ``snooze DAYS``), with their labels.
OPT_INS = (("consent_suggest", "Suggested to members who need what you offer", "会被推荐给有需要的成员"),
           ("consent_digest", "Personal weekly digest", "个人周报"),
           ("consent_event_alerts", "Told of new events matching your interests", "有匹配的新活动时通知我"),
           ("consent_questions", "Asked open questions you could answer", "把我可能会答的问题转给我"))
_YES = frozenset({"yes", "y", "on", "true", "1", "是", "开", "开启", "要", "好"})
_NO = frozenset({"no", "n", "off", "false", "0", "否", "关", "关闭", "不要", "不"})
_SNOOZE = re.compile(r"(?:snooze|暂停)\s*(\d{1,3})\s*(?:d|days?|天)?", re.IGNORECASE)
#: Fields shown by ``/profile show``, with their English and Chinese labels, in order.
FIELDS = (("bio", "Bio", "简介"), ("skills", "Skills", "技能"), ("offers", "Offers", "能提供"),
          ("needs", "Needs", "需要"), ("location", "Location", "地点"), ("languages", "Languages", "语言"),
          ("timezone", "Time zone", "时区"))
#: How replies and the key help name each field (and each opt-in) in English and Chinese: the key to type.
#: ``intro_opt_out`` and ``intro_snooze_until`` are both the ``intros`` opt-in; ``url`` and
#: ``consent_quote`` are not set with ``/profile set`` but are named when ``/profile link`` merges them.
LABELS: dict[str, tuple[str, str]] = {
    "bio": ("bio", "简介"), "skills": ("skills", "技能"), "offers": ("offers", "能提供"),
    "needs": ("needs", "需要"), "location": ("location", "地点"), "languages": ("languages", "语言"),
    "timezone": ("timezone", "时区"), "url": ("url", "网址"),
    "consent_suggest": ("suggest", "推荐"), "consent_digest": ("digest", "周报"),
    "consent_event_alerts": ("alerts", "活动提醒"), "consent_questions": ("questions", "答疑"),
    "intros": ("intros", "引荐"), "intro_opt_out": ("intros", "引荐"),
    "intro_snooze_until": ("intros", "引荐"),
    "consent_quote": ("quote", "引用"),
}
#: Fields that, once filled, mean the member wants to be suggested to others.
_SUGGEST_FIELDS = frozenset({"bio", "skills", "offers", "needs"})
_PAIRS = re.compile(r"[;；\n]")
_KEY_VALUE = re.compile(r"\s*([^:：]*?)\s*[:：]\s*(.*)", re.DOTALL)


def _keys_help(language: str) -> str:
    return tr(language, "Keys: bio, skills, offers, needs, location, languages, timezone; "
                        "opt-ins (yes or no): suggest, digest, alerts, questions, intros.",
              "可用的键：简介、技能、能提供、需要、地点（城市）、语言、时区；"
              "开关（是或否）：推荐、周报、活动提醒、答疑、引荐。")


def field_labels(fields: Iterable[str], language: str) -> str:
    """``["offers", "consent_digest"]`` -> ``"offers, digest"`` (``"能提供、周报"``): the readable names of
    ``fields`` (:data:`LABELS`), each once, in order."""
    names = dict.fromkeys(tr(language, *LABELS.get(field, (field, field))) for field in fields)
    return tr(language, ", ", "、").join(names)


def parse_profile_pairs(text: str, *, language: str = "en") -> dict[str, str]:
    """``"offers: angel investing; needs: a designer"`` -> ``{"offers": "angel investing", "needs": ...}``.

    Raises:
        UsageError: no pair, a part without ``:``, an unknown key, or a time zone that is not an IANA name.
    """
    values: dict[str, str] = {}
    typed: dict[str, str] = {}  # field -> the key as the member wrote it, for messages
    for part in _PAIRS.split(text):
        if not part.strip():
            continue
        match = _KEY_VALUE.fullmatch(part)
        if match is None:
            raise UsageError(_no_colon(part.strip(), language))
        field = PROFILE_KEYS.get(match.group(1).lower())
        if field is None:
            key = match.group(1)
            raise UsageError(tr(language, f"Unknown profile key {key!r}. ", f"未知的资料键「{key}」。")
                             + _keys_help(language))
        values[field] = match.group(2).strip()
        typed[field] = match.group(1)
    if not values:
        example = tr(language, "Say what to set, e.g. offers: angel investing; needs: a designer. ",
                     "请写出要设置的内容，例如 能提供：天使投资；需要：设计师。")
        raise UsageError(example + _keys_help(language))
    for field, value in values.items():
        key = typed[field]
        if field.startswith("consent_") and _yes_no(value) is None:
            raise UsageError(tr(language, f"Answer yes or no for {key}, not {value!r}.",
                                f"{key}：请回答「是」或「否」，而不是「{value}」。"))
        if field == "intros" and _yes_no(value) is None and not _SNOOZE.fullmatch(value):
            raise UsageError(tr(language, f"{key}: yes, no, or snooze DAYS (e.g. {key}: snooze 14).",
                                f"{key}：是、否，或「暂停 天数」（例如 {key}：暂停 14）。"))
    tz = values.get("timezone")
    if tz and not is_timezone(tz):
        suggestion = suggest_timezone(tz)
        if suggestion:
            raise UsageError(tr(language, f"Unknown time zone {tz!r}; did you mean {suggestion}?",
                                f"未知时区「{tz}」，你是想写 {suggestion} 吗？"))
        raise UsageError(tr(language, f"Unknown time zone {tz!r}; use a name like Asia/Shanghai.",
                            f"未知时区「{tz}」，请使用 Asia/Shanghai 这样的名称。"))
    return values


#: An example value per field, for messages.
_EXAMPLES = {"bio": ("hardware founder", "硬件创业者"), "skills": ("python, design", "Python、设计"),
             "offers": ("angel investing", "天使投资"), "needs": ("a designer", "设计师"),
             "location": ("Shanghai", "上海"), "languages": ("English, 中文", "中文、English"),
             "timezone": ("Asia/Shanghai", "Asia/Shanghai"),
             **{field: ("yes", "是") for field, *_ in OPT_INS}, "intros": ("yes", "是")}


def _no_colon(part: str, language: str) -> str:
    """The message for a part without ``:``. When it starts with a key (``offers``, ``offers angel
    investing``, ``能提供天使投资``) the example uses the sender's key and value."""
    key = _leading_key(part)
    if key is None:
        return tr(language, "Write it as KEY: VALUE, e.g. offers: angel investing. ",
                  "请写成「键：值」，例如 能提供：天使投资。") + _keys_help(language)
    value = part[len(key):].strip()
    en, zh = _EXAMPLES.get(PROFILE_KEYS[key.lower()], ("yes", "是"))
    return tr(language, f"Write it as KEY: VALUE, e.g. {key}: {value or en}",
              f"请写成「键：值」，例如 {key}：{value or zh}")


def _leading_key(part: str) -> str | None:
    """The profile key ``part`` starts with, as written: a whole English word, or a Chinese key that may
    run into its value; the longest one wins."""
    found = None
    for key in PROFILE_KEYS:
        head = part[:len(key)]
        if head.lower() != key:
            continue
        rest = part[len(key):]
        whole_word = not rest or rest[0].isspace() or not key.isascii()
        if whole_word and (found is None or len(key) > len(found)):
            found = head
    return found


def _yes_no(value: str) -> bool | None:
    word = value.strip().lower()
    return True if word in _YES else False if word in _NO else None


def set_profile(ctx: CommandContext, args: str) -> list[Reply]:
    """``/profile set KEY: VALUE; ...``: updates ``ctx.member`` and shows the profile.

    Opt-ins take yes/no (``digest: yes``, ``问题：否``); ``intros: no`` means "don't introduce me",
    ``intros: snooze 14`` pauses introductions for 14 days, ``intros: yes`` resumes them.
    """
    values = parse_profile_pairs(args, language=ctx.language)
    member = ctx.member
    for field, value in values.items():
        if field.startswith("consent_"):
            setattr(member, field, bool(_yes_no(value)))
        elif field == "intros":
            snooze = _SNOOZE.fullmatch(value.strip())
            member.intro_snooze_until = ctx.now + timedelta(days=int(snooze.group(1))) if snooze else None
            member.intro_opt_out = _yes_no(value) is False
        else:
            setattr(member, field, value)
    if "consent_suggest" not in values and any(values.get(f) for f in _SUGGEST_FIELDS):
        member.consent_suggest = True
    member.updated_at = ctx.now
    ctx.session.add(member)
    ctx.session.flush()
    en_fields, zh_fields = field_labels(values, "en"), field_labels(values, "zh")
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
    for field, en, zh in OPT_INS:
        answer = tr(lang, "yes", "是") if getattr(member, field) else tr(lang, "no", "否")
        lines.append(tr(lang, f"{en}: {answer}", f"{zh}：{answer}"))
    if member.intro_opt_out:
        intros = tr(lang, "no", "否")
    elif member.intro_snooze_until is not None and member.intro_snooze_until > ctx.now:
        day = member.intro_snooze_until.date().isoformat()
        intros = tr(lang, f"paused until {day}", f"暂停至 {day}")
    else:
        intros = tr(lang, "yes", "是")
    lines.append(tr(lang, f"Introductions to people you should meet: {intros}",
                    f"为我引荐值得认识的人：{intros}"))
    return "\n".join(lines)


def link_profile(ctx: CommandContext, args: str) -> list[Reply]:
    """``/profile link [CODE]`` (``/资料 绑定 [验证码]``): join this account with another of the sender's.

    Without a code: issues a one-time code (:func:`bot.linking.issue_link_code`) and answers privately
    with it, its lifetime and the line to send from the other account. With a code (``K7MX-P4QD``; a code
    typed in two groups, ``K7MX P4QD``, is one code): redeems it (:func:`bot.linking.redeem_link_code`),
    merging this account's member into the issuer's, and answers privately with the kept member's name,
    the platforms now linked, the RSVPs moved, which profile fields and opt-ins (where the two accounts
    differed) came from this account and which from the other, and whether the member is suggested to
    others.

    Raises:
        UsageError: more than one argument, or a code that is unknown, expired, used, of another community
            or of this same account.
    """
    words = args.split()
    if not words:
        return [_issue(ctx)]
    code = "".join(words)
    if len(words) > 1 and len(normalise_code(code)) != CODE_LENGTH:
        raise UsageError(tr(ctx.language, "Send just the code, e.g. /profile link K7MX-P4QD.",
                            "只需发送验证码，例如 /资料 绑定 K7MX-P4QD。"))
    return [_redeem(ctx, code)]


def _issue(ctx: CommandContext) -> Reply:
    code = issue_link_code(ctx.session, member=ctx.member, platform=ctx.message.platform, now=ctx.now,
                           ttl=LINK_CODE_TTL)
    minutes = int(LINK_CODE_TTL.total_seconds() // 60)
    return say(ctx,
               f"Your link code: {code} (one use, valid for {minutes} minutes).\n"
               f"From your other account (on the other platform), send:\n/profile link {code}\n"
               f"(or /资料 绑定 {code}). That account's RSVPs and events then move to this one, and the two "
               "profiles are joined: empty fields are filled from either, and where both differ (opt-ins "
               "too), the account updated more recently wins.",
               f"你的绑定验证码：{code}（只能用一次，{minutes} 分钟内有效）。\n"
               f"请用你在另一个平台上的账号发送：\n/资料 绑定 {code}\n"
               f"（或 /profile link {code}）。那个账号的报名和活动随后会转到本账号，两边的资料也会合并："
               "空着的项用另一边的补上，两边不同的项（包括各项开关）以最近更新的账号为准。",
               private=True)


def _redeem(ctx: CommandContext, code: str) -> Reply:
    session = ctx.session
    moved = session.exec(select(func.count()).select_from(Rsvp).where(Rsvp.member_id == ctx.member.id)).one()
    keep, merged = redeem_link_code(session, member=ctx.member, platform=ctx.message.platform, code=code,
                                    now=ctx.now, language=ctx.language)
    platforms = sorted(set(session.exec(
        select(PlatformIdentity.platform).where(PlatformIdentity.member_id == keep.id)).all()))
    name = keep.display_name
    if keep.consent_suggest:
        suggested_en, suggested_zh = "yes", "是"
    else:
        suggested_en = "no (tell members what you offer with /profile set offers: ... to turn it on)"
        suggested_zh = "否（用 /资料 设置 能提供：…… 填写你能提供的即可开启）"
    # The sender redeemed from the merged-in account ("this account"); the kept one is "your other account".
    origin_en, origin_zh = [], []
    if merged.from_gone:
        origin_en.append(f"From this account: {field_labels(merged.from_gone, 'en')}\n")
        origin_zh.append(f"来自本账号：{field_labels(merged.from_gone, 'zh')}\n")
    if merged.from_keep:
        origin_en.append(f"From your other account: {field_labels(merged.from_keep, 'en')}\n")
        origin_zh.append(f"来自另一个账号：{field_labels(merged.from_keep, 'zh')}\n")
    return say(ctx,
               f"Linked: your accounts are now one member, {name} ({', '.join(platforms)}).\n"
               f"RSVPs moved from this account: {moved}.\n"
               f"{''.join(origin_en)}"
               f"Suggested to members who need what you offer: {suggested_en}\n"
               "Send /profile show to see the joined profile.",
               f"绑定成功：你的账号现在是同一位成员 {name}（{'、'.join(platforms)}）。\n"
               f"从本账号转移的报名：{moved} 条。\n"
               f"{''.join(origin_zh)}"
               f"会被推荐给有需要的成员：{suggested_zh}\n"
               "发送 /资料 查看合并后的资料。",
               private=True)
