"""One handler per intent: turn a classified utterance into platform-neutral replies.

Handlers ask the matcher for members / resources / events (with the community's threshold; "no good
match" is an answer too) and never guess below it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot.community import CommunitySettings
from bot.event_query import event_topic, event_window
from bot.events import event_line, upcoming_events
from bot.feedback import is_positive_feedback
from bot.i18n import tr
from bot.language import language_codes
from bot.messages import Button, IncomingMessage, Match, MatchKind, Reply
from bot.models import Community, Event, Member
from bot.ports import Matcher

#: How many matches a reply shows.
REPLY_TOP_K = 3
#: How many upcoming events a "what's on" reply lists.
EVENT_LIST_LIMIT = 5


@dataclass(slots=True)
class IntentContext:
    """What an intent handler receives (built by the router).

    Attributes:
        session: open database session (the router commits).
        community: the community row.
        settings: its effective settings.
        member: the asker.
        message: the message.
        text: the utterance as classified.
        language: reply language.
        now: current aware UTC time.
        matcher: the matcher.
    """

    session: Session
    community: Community
    settings: CommunitySettings
    member: Member
    message: IncomingMessage
    text: str
    language: str
    now: datetime
    matcher: Matcher


@dataclass(slots=True)
class IntentResult:
    """Replies plus the matches they present and whether the question stays unanswered (for review)."""

    replies: list[Reply]
    matches: list[Match] = field(default_factory=list)
    unanswered: bool = False


INTENT_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "find_member": ("find a member who can help", "找一位能帮忙的成员"),
    "find_resource": ("find a resource (guide, tool, programme)", "找资源（指南、工具、扶持计划）"),
    "find_event": ("see upcoming events", "查看近期活动"),
    "rsvp": ("RSVP to an event", "报名活动"),
    "update_profile": ("update what you offer or need", "更新你能提供或需要的"),
    "help": ("see what I can do", "看看我能做什么"),
    "greeting": ("say hello", "打个招呼"),
    "thanks": ("say thanks", "表示感谢"),
    "feedback": ("give feedback about my answers", "对我的回答提反馈"),
    "out_of_scope": ("something I can't help with", "我帮不上的问题"),
}


def describe_intent(intent: str, language: str) -> str:
    """A short human description of ``intent`` in ``language`` (the label itself for unknown intents)."""
    en, zh = INTENT_DESCRIPTIONS.get(intent, (intent.replace("_", " "), intent))
    return tr(language, en, zh)


_WHY_LABELS_ZH = {
    "name": "名称",
    "title": "标题",
    "bio": "简介",
    "skills": "技能",
    "offers": "能提供",
    "needs": "需要",
    "location": "地点",
    "languages": "语言",
    "description": "介绍",
    "tags": "标签",
    "place": "地点",
}
_WHY = re.compile(r"^(?:(?P<label>[a-z]+): (?P<snippet>.*?); )?(?:shares (?P<shared>.+)|close in meaning)$")


def localise_why(why: str, language: str) -> str:
    """``Match.why`` (``offers: angel investing; shares 'angel'``) in the reader's language."""
    found = _WHY.match(why)
    if language != "zh" or found is None:
        return why
    parts = []
    if found["label"]:
        parts.append(f"{_WHY_LABELS_ZH.get(found['label'], found['label'])}：{found['snippet']}")
    parts.append(f"共同词 {found['shared']}" if found["shared"] else "语义相近")
    return "；".join(parts)


def _format_match(index: int, match: Match, language: str) -> str:
    line = f"{index}. {match.title}"
    if match.detail:
        line += f" — {match.detail}"
    if match.url:
        line += f" <{match.url}>"
    if match.why:
        line += "\n   " + tr(language, "why: ", "匹配原因：") + localise_why(match.why, language)
    return line


def _search(ctx: IntentContext, kinds: list[MatchKind]) -> list[Match]:
    assert ctx.community.id is not None
    found = ctx.matcher.search(
        community_id=ctx.community.id,
        query=ctx.text,
        kinds=kinds,
        top_k=REPLY_TOP_K + 1,
        threshold=ctx.settings.match_threshold,
        upcoming_only=True,
        languages=sorted(language_codes(ctx.member.languages)) or None,
    )
    return [m for m in found if not (m.kind == "member" and m.id == ctx.member.id)][:REPLY_TOP_K]


def _answer_with_matches(
    ctx: IntentContext, kinds: list[MatchKind], header: tuple[str, str], none: tuple[str, str]
) -> IntentResult:
    matches = _search(ctx, kinds)
    good = [m for m in matches if not m.below_threshold]
    lang = ctx.language
    if not good:
        text = (
            tr(lang, *none)
            + "\n"
            + tr(
                lang,
                "I've noted your question and will ask members who may know.",
                "我记下了你的问题，会去问问可能知道的成员。",
            )
        )
        return IntentResult([Reply(text=text, language=lang)], matches=matches, unanswered=True)
    lines = [tr(lang, *header)] + [_format_match(i, m, lang) for i, m in enumerate(good, 1)]
    buttons = (
        Button(label=tr(lang, "Helpful", "有帮助"), action="feedback", value="helpful"),
        Button(label=tr(lang, "Not helpful", "没帮助"), action="feedback", value="not_helpful"),
    )
    return IntentResult(
        [Reply(text="\n".join(lines), language=lang, matches=tuple(good), buttons=buttons)], matches=matches
    )


def handle_find_member(ctx: IntentContext) -> IntentResult:
    """Members whose profile matches the question (consenting members only). When no member matches but a
    resource does (a guide, or a Q&A thread imported from Slack that answers this very question), the
    resources are offered instead of a bare "no match"."""
    result = _answer_with_matches(
        ctx,
        ["member"],
        ("These members may be able to help:", "这些成员也许能帮上忙："),
        ("I couldn't find a good match among members yet.", "暂时没有找到合适的成员。"),
    )
    if not result.unanswered:
        return result
    fallback = _answer_with_matches(
        ctx,
        ["resource"],
        ("No member matches yet, but these resources may help:",
         "暂时没有合适的成员，不过这些资源也许有用："),
        ("I couldn't find a good match among members yet.", "暂时没有找到合适的成员。"),
    )
    return result if fallback.unanswered else fallback


def handle_find_resource(ctx: IntentContext) -> IntentResult:
    """Shared resources matching the question."""
    return _answer_with_matches(
        ctx,
        ["resource"],
        ("Resources that may help:", "这些资源也许有用："),
        ("I couldn't find a matching resource yet.", "暂时没有找到匹配的资源。"),
    )


def _event_match(event: Event, *, settings: CommunitySettings, language: str) -> Match:
    assert event.id is not None
    return Match(
        kind="event",
        id=event.id,
        title=event.title,
        score=1.0,
        why="upcoming",
        url=event.link,
        detail=event_line(event, tz=settings.zone, language=language),
    )


def handle_find_event(ctx: IntentContext) -> IntentResult:
    """Upcoming events: by topic through the matcher, or (no topic) the next ones by start time."""
    assert ctx.community.id is not None
    lang = ctx.language
    window = event_window(ctx.text, now=ctx.now, tz=ctx.settings.zone)
    topic = event_topic(ctx.text)
    note = ""
    if topic:
        matches = [m for m in _search(ctx, ["event"]) if not m.below_threshold]
        if window is not None:
            ids = {
                e.id
                for e in upcoming_events(
                    ctx.session,
                    community_id=ctx.community.id,
                    now=ctx.now,
                    start=window.start,
                    end=window.end,
                    limit=1000,
                )
            }
            matches = [m for m in matches if m.id in ids]
        if matches:
            lines = [tr(lang, "Events that match:", "匹配的活动：")]
            lines += [_format_match(i, m, lang) for i, m in enumerate(matches, 1)]
            lines.append(tr(lang, "RSVP with /rsvp ID.", "报名请发送 /报名 活动编号。"))
            return IntentResult(
                [Reply(text="\n".join(lines), language=lang, matches=tuple(matches))], matches=matches
            )
        note = tr(lang, f"No upcoming event about “{topic}”. ", f"暂时没有关于“{topic}”的活动。")
    events = upcoming_events(
        ctx.session,
        community_id=ctx.community.id,
        now=ctx.now,
        start=window.start if window else None,
        end=window.end if window else None,
        limit=EVENT_LIST_LIMIT,
    )
    if not events and window is not None:
        note += tr(lang, "Nothing is planned in that period. ", "这段时间没有安排活动。")
        events = upcoming_events(
            ctx.session, community_id=ctx.community.id, now=ctx.now, limit=EVENT_LIST_LIMIT
        )
    if not events:
        text = note + tr(
            lang,
            "There are no upcoming events yet. Organisers can add one with /event create.",
            "近期还没有活动。组织者可以用 /活动 创建 来添加。",
        )
        return IntentResult([Reply(text=text, language=lang)], unanswered=bool(topic))
    lines = [note + tr(lang, "Upcoming events:", "近期活动：")]
    lines += [event_line(e, tz=ctx.settings.zone, language=lang) for e in events]
    lines.append(tr(lang, "RSVP with /rsvp ID.", "报名请发送 /报名 活动编号。"))
    matches = [_event_match(e, settings=ctx.settings, language=lang) for e in events]
    buttons = tuple(Button(label=f"RSVP #{e.id}", action="rsvp", value=str(e.id)) for e in events)
    return IntentResult(
        [Reply(text="\n".join(lines), language=lang, matches=tuple(matches), buttons=buttons)],
        matches=matches,
    )


_EVENT_ID = re.compile(r"#?\b(\d{1,9})\b")


def handle_rsvp(ctx: IntentContext) -> IntentResult:
    """An RSVP in words: with an event number it is recorded through ``/rsvp``; else how to RSVP."""
    from bot.commands import run_command
    from bot.commands.context import CommandContext

    found = _EVENT_ID.search(ctx.text)
    if found:
        cctx = CommandContext(
            session=ctx.session,
            community=ctx.community,
            settings=ctx.settings,
            member=ctx.member,
            message=ctx.message,
            language=ctx.language,
            is_admin=False,
            now=ctx.now,
            matcher=ctx.matcher,
        )
        return IntentResult(run_command(cctx, f"/rsvp {found.group(1)}"))
    listing = handle_find_event(ctx)
    hint = tr(
        ctx.language,
        "Tell me which one: /rsvp ID (for example /rsvp 3).",
        "请告诉我是哪一个：/报名 活动编号（例如 /报名 3）。",
    )
    return IntentResult([Reply(text=hint, language=ctx.language), *listing.replies], matches=listing.matches)


_OFFER_PATTERNS = (
    re.compile(
        r"\b(?:i can (?:help(?: people)? with|offer|teach|mentor(?: on)?)|happy to help with|"
        r"i(?:'m| am) good at|i know (?:a lot )?about)\s+(?P<v>[^.;!?\n]+)",
        re.I,
    ),
    re.compile(r"(?:我可以提供|我能提供|我可以帮忙|我可以帮大家|我能帮|我擅长|我会)(?P<v>[^。；;！!？?\n]+)"),
)
_NEED_PATTERNS = (
    re.compile(
        r"\b(?:i need|i'm looking for|i am looking for|looking for|we need|we're looking for|"
        r"i want to find|seeking)\s+(?P<v>[^.;!?\n]+)",
        re.I,
    ),
    re.compile(r"(?:我需要|我在找|我想找|我们需要|寻找|求)(?P<v>[^。；;！!？?\n]+)"),
)


def _extract(patterns: tuple[re.Pattern[str], ...], text: str) -> str:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return found.group("v").strip(" ，,：:")
    return ""


def _append(current: str, value: str) -> str:
    parts = [p.strip() for p in current.split(";") if p.strip()]
    if value.lower() not in (p.lower() for p in parts):
        parts.append(value)
    return "; ".join(parts)


def handle_update_profile(ctx: IntentContext) -> IntentResult:
    """ "I can help with X" / "I need Y" (and Chinese forms) update the asker's offers / needs."""
    lang = ctx.language
    offer = _extract(_OFFER_PATTERNS, ctx.text)
    need = _extract(_NEED_PATTERNS, ctx.text)
    if not offer and not need:
        text = tr(
            lang,
            "Tell me what you offer or need with /profile set offers: ...; needs: ...",
            "用 /资料 设置 能提供：……；需要：…… 告诉我你能提供什么、需要什么。",
        )
        return IntentResult([Reply(text=text, language=lang)])
    member = ctx.member
    if offer:
        member.offers = _append(member.offers, offer)
    if need:
        member.needs = _append(member.needs, need)
    member.consent_suggest = True
    member.updated_at = ctx.now
    ctx.session.add(member)
    saved = []
    if offer:
        saved.append(tr(lang, f"offers: {offer}", f"能提供：{offer}"))
    if need:
        saved.append(tr(lang, f"needs: {need}", f"需要：{need}"))
    text = (
        tr(lang, "Saved to your profile — ", "已保存到你的资料：")
        + "; ".join(saved)
        + "\n"
        + tr(
            lang,
            "Members may now be suggested to you and you to them. See it with /profile show.",
            "之后我会据此为你推荐成员，也会把你推荐给别人。用 /资料 查看。",
        )
    )
    return IntentResult([Reply(text=text, language=lang)])


def handle_help(ctx: IntentContext) -> IntentResult:
    """What the bot can do, with examples, in the asker's language."""
    text = tr(
        ctx.language,
        "I can find members who can help (“who knows about angel rounds?”), resources (“any credits for "
        "analytics tools?”) and events (“what's on next week?”). Tell me what you offer or need "
        "(“I can help with pitch decks”). Commands: /event, /rsvp, /profile, /resource, /help.",
        "我可以帮你找能帮忙的成员（“有人懂天使轮融资吗？”）、资源（“有数据分析工具的优惠吗？”）和活动"
        "（“下周有什么活动？”）。也可以告诉我你能提供或需要什么（“我可以帮忙改BP”）。命令：/活动、/报名、/资料、"
        "/资源、/帮助。",
    )
    return IntentResult([Reply(text=text, language=ctx.language)])


def handle_greeting(ctx: IntentContext) -> IntentResult:
    """A short hello that says what to ask."""
    text = tr(
        ctx.language,
        "Hi! Ask me who can help, which resources exist, or what events are coming up.",
        "你好！可以问我谁能帮忙、有哪些资源，或者近期有什么活动。",
    )
    return IntentResult([Reply(text=text, language=ctx.language)])


def handle_thanks(ctx: IntentContext) -> IntentResult:
    """You're welcome."""
    return IntentResult([Reply(text=tr(ctx.language, "You're welcome!", "不客气！"), language=ctx.language)])


def handle_feedback(ctx: IntentContext) -> IntentResult:
    """Feedback is kept for review and retraining (the router flags the message and, through
    :mod:`bot.feedback`, the answer it is about); positive feedback (the "helpful" button) is only thanked."""
    if is_positive_feedback(ctx.text):
        text = tr(ctx.language, "Thanks — glad it helped!", "谢谢，很高兴帮上了忙！")
        return IntentResult([Reply(text=text, language=ctx.language)])
    text = tr(ctx.language, "Thanks for the feedback — an admin will review it.", "谢谢反馈，管理员会查看。")
    return IntentResult([Reply(text=text, language=ctx.language)], unanswered=True)


def handle_out_of_scope(ctx: IntentContext) -> IntentResult:
    """Outside what the bot is for: say so and say what it can do."""
    text = tr(
        ctx.language,
        "That's outside what I can help with. I know this community's members, resources and events — "
        "try “who can help with fundraising?” or “what events are coming up?”.",
        "这个我帮不上。我了解社区的成员、资源和活动——可以试试“谁懂融资？”或“近期有什么活动？”。",
    )
    return IntentResult([Reply(text=text, language=ctx.language)])


INTENT_HANDLERS: dict[str, Callable[[IntentContext], IntentResult]] = {
    "find_member": handle_find_member,
    "find_resource": handle_find_resource,
    "find_event": handle_find_event,
    "rsvp": handle_rsvp,
    "update_profile": handle_update_profile,
    "help": handle_help,
    "greeting": handle_greeting,
    "thanks": handle_thanks,
    "feedback": handle_feedback,
    "out_of_scope": handle_out_of_scope,
    "oos": handle_out_of_scope,  # the out-of-scope label of models trained on CLINC-style data
}


def handle_unknown_intent(ctx: IntentContext) -> IntentResult:
    """An admin-added intent with no handler yet: search everything rather than fail."""
    return _answer_with_matches(
        ctx,
        ["member", "resource", "event"],
        ("Here is what I found:", "我找到这些："),
        ("I couldn't find a good match yet.", "暂时没有找到合适的结果。"),
    )
