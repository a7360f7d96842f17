"""``/bot review`` and ``/bot label`` (``/机器人 审核``, ``/机器人 标注``): the review queue and admin labels.

The review queue (:mod:`bot.feedback`) holds the messages the bot could not answer, answered below its
confidence floor, or was told it got wrong. Admins read it oldest first and teach the bot:

* ``/bot review [N]`` shows the N (default 10, at most 50) oldest flagged messages: id, when, predicted
  intent and confidence, the text clipped; and how many wait in all.
* ``/bot review dismiss ID [ID ...]`` takes messages out of the queue without a label (noise, spam).
* ``/bot label "TEXT" INTENT`` and ``/bot label MESSAGE_ID INTENT`` store a training utterance
  (:class:`bot.models.LabelledUtterance`, source ``admin``) for the next ``/bot retrain``, and take the
  message (by id), or every flagged message with exactly that text, out of the queue. Labelling a text
  again replaces its label. INTENT must be a known label (:func:`known_labels`) unless ``--new`` says it is
  a new intent on purpose, so a typo (``find_memeber``) is refused with a did-you-mean.
"""

from __future__ import annotations

import difflib
import re

from sqlmodel import Session, col, select

from bot.commands.admin import audit, require_admin
from bot.commands.context import CommandContext
from bot.commands.parsing import Flag, Token, join_tokens, parse_args, parse_id, parse_positive_int
from bot.commands.replies import say
from bot.errors import NotFoundError, UsageError
from bot.feedback import review_queue, review_queue_size
from bot.i18n import tr
from bot.intents import INTENT_DESCRIPTIONS
from bot.language import detect_language
from bot.messages import Reply
from bot.models import LabelledUtterance, MessageLog, ModelVersion
from bot.timefmt import format_when

#: How many flagged messages ``/bot review`` shows by default, and at most.
REVIEW_DEFAULT, REVIEW_MAX = 10, 50
#: How many characters of a message ``/bot review`` shows.
CLIP_CHARS = 80
#: The longest utterance that can be labelled, in characters (the router's classifier limit).
MAX_LABEL_TEXT = 2000
#: ``source`` of the utterances admins label.
ADMIN_SOURCE = "admin"

_DISMISS_WORDS = frozenset({"dismiss", "skip", "clear", "忽略", "跳过", "移除"})
_LABEL_FLAGS = (Flag("new", aliases=("新", "新意图"), takes_value=False),)
_LABEL_NAME = re.compile(r"^[^\W\d]\w{0,63}$")
_ID = re.compile(r"^[#＃]?\d+$")
_ADMINS_ONLY = ("Only community admins can review and label messages.", "只有社区管理员可以审核和标注消息。")


def review(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot review [N]`` or ``/bot review dismiss ID [ID ...]`` (admins only); the listing is private.
    Audited as ``review.show`` (shown, total) or ``review.dismiss`` (ids).

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: N is not a whole number from 1 to 50, or extra words.
        NotFoundError: ``dismiss`` names no message of this community.
    """
    require_admin(ctx, *_ADMINS_ONLY)
    words = [t.text for t in parse_args(args, language=ctx.language).positionals]
    if words and words[0].lower() in _DISMISS_WORDS:
        return _dismiss(ctx, words[1:])
    if len(words) > 1:
        raise UsageError(tr(ctx.language, "Give at most one number.", "最多给一个数字。"))
    limit = REVIEW_DEFAULT
    if words:
        limit = parse_positive_int(words[0], what="N", language=ctx.language, maximum=REVIEW_MAX)
    assert ctx.community.id is not None
    rows = review_queue(ctx.session, community_id=ctx.community.id, limit=limit)
    total = review_queue_size(ctx.session, community_id=ctx.community.id)
    audit(ctx, "review.show", shown=len(rows), total=total)
    if not rows:
        return [say(ctx, "The review queue is empty.", "待审核队列是空的。", private=True)]
    head = tr(ctx.language, f"Review queue: {total} flagged, oldest first (showing {len(rows)}):",
              f"待审核队列：共 {total} 条，最早的在前（显示 {len(rows)} 条）：")
    hint = tr(ctx.language,
              "Label one: /bot label ID INTENT (--new for a new intent) · skip one: /bot review dismiss ID",
              "标注：/机器人 标注 编号 意图（新意图加 --new）· 忽略：/机器人 审核 忽略 编号")
    lines = [head, *(_review_line(ctx, row) for row in rows), hint]
    return [Reply(text="\n".join(lines), language=ctx.language, private=True)]


def _review_line(ctx: CommandContext, row: MessageLog) -> str:
    """``#12 · Mon 1 Mar 2027, 17:00 · find_member 0.42 · “who knows …”``."""
    when = format_when(row.created_at, tz=ctx.settings.zone, language=ctx.language)
    predicted = row.intent or "-"
    if row.confidence is not None:
        predicted += f" {row.confidence:.2f}"
    return f"#{row.id} · {when} · {predicted} · “{clip(row.text)}”"


def clip(text: str, limit: int = CLIP_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with ``…`` when longer."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _dismiss(ctx: CommandContext, words: list[str]) -> list[Reply]:
    """Take the messages ``words`` name out of the review queue."""
    if not words:
        raise UsageError(tr(ctx.language, "Which message? Give its id from /bot review.",
                            "哪一条？请给出 /机器人 审核 里的编号。"))
    rows = [_message(ctx, word) for word in words]
    for row in rows:
        row.needs_review = False
        ctx.session.add(row)
    ids = ", ".join(f"#{row.id}" for row in rows)
    audit(ctx, "review.dismiss", ids=[row.id for row in rows])
    return [say(ctx, f"Taken out of the review queue: {ids}.", f"已移出待审核队列：{ids}。")]


def _message(ctx: CommandContext, word: str) -> MessageLog:
    """The logged message of this community with the id ``word`` (``12``, ``#12``).

    Raises:
        UsageError: ``word`` is not an id.
        NotFoundError: no message of this community has it.
    """
    number = parse_id(word, what=tr(ctx.language, "The message id", "消息编号"), language=ctx.language)
    row = ctx.session.get(MessageLog, number) if number is not None else None
    if row is None or row.community_id != ctx.community.id:
        raise NotFoundError(tr(ctx.language, f"There is no message {word} in this community.",
                               f"本社区没有消息 {word}。"))
    return row


def label(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot label "TEXT" INTENT [--new]`` or ``/bot label MESSAGE_ID INTENT [--new]`` (admins only).

    Stores (or relabels) the admin utterance for TEXT or for the message's text, and takes the message (by
    id) or the flagged messages with exactly that text out of the review queue. Audited as ``label``
    (text, label, message id, new, previous label).

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: missing text or intent, an empty or too long text, a malformed intent name, a command
            message, or an unknown intent without ``--new`` (with a did-you-mean or the known intents).
        NotFoundError: MESSAGE_ID is no message of this community.
    """
    require_admin(ctx, *_ADMINS_ONLY)
    parsed = parse_args(args, flags=_LABEL_FLAGS, language=ctx.language)
    if len(parsed.positionals) < 2:
        raise UsageError(tr(ctx.language, "Give the text (in quotes) or a message id, then the intent.",
                            "请先给出文本（加引号）或消息编号，再给出意图。"))
    *target, last = parsed.positionals
    intent = _label_name(ctx, last.text)
    is_new = bool(parsed.options.get("new"))
    row = _message(ctx, target[0].text) if _is_id(target) else None
    text = row.text.strip() if row is not None else join_tokens(target)
    _check_text(ctx, text, row)
    known = known_labels(ctx.session, community_id=ctx.community.id)
    if intent not in known and not is_new:
        raise UsageError(_unknown_intent(ctx, intent, known))
    previous = _store(ctx, text=text, intent=intent, language=_language(ctx, text, row))
    cleared = _clear_review(ctx, text=text, row=row)
    audit(ctx, "label", text=text[:200], label=intent, message_id=row.id if row else None,
          new=intent not in known, previous=previous, cleared=cleared)
    return [_labelled_reply(ctx, text=text, intent=intent, new=intent not in known, previous=previous)]


def _is_id(target: list[Token]) -> bool:
    """The label's target is one unquoted number (a message id), not a text."""
    return len(target) == 1 and not target[0].quoted and _ID.match(target[0].text) is not None


def _label_name(ctx: CommandContext, raw: str) -> str:
    """An intent name as stored: lower case, ``-`` and spaces as ``_`` (``Find-Member`` -> ``find_member``).

    Raises:
        UsageError: not one word of letters, digits and ``_`` starting with a letter, or over 64 characters.
    """
    name = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if not _LABEL_NAME.match(name):
        raise UsageError(tr(
            ctx.language,
            f"{raw!r} is not an intent name: one word of letters, digits and _ (find_member).",
            f"「{raw}」不是有效的意图名：只能是字母、数字和 _ 组成的一个词（例如 find_member）。"))
    return name


def _check_text(ctx: CommandContext, text: str, row: MessageLog | None) -> None:
    """Refuse what cannot be a training utterance: nothing, too long, or a command message.

    Raises:
        UsageError: says which.
    """
    if row is not None and row.intent == "command":
        raise UsageError(tr(ctx.language, f"#{row.id} is a command, not something to learn from.",
                            f"#{row.id} 是一条命令，不能用来训练。"))
    if not text:
        raise UsageError(tr(ctx.language, "The text to label is empty.", "要标注的文本是空的。"))
    if len(text) > MAX_LABEL_TEXT:
        raise UsageError(tr(ctx.language, f"The text is too long (at most {MAX_LABEL_TEXT} characters).",
                            f"文本太长（最多 {MAX_LABEL_TEXT} 个字符）。"))


def known_labels(session: Session, *, community_id: int | None) -> set[str]:
    """The intents a label may use without ``--new``: the shipped intents, the labels of the serving model
    (the active :class:`bot.models.ModelVersion`), and the labels stored for this community or for all."""
    known = set(INTENT_DESCRIPTIONS)
    active = session.exec(select(ModelVersion).where(ModelVersion.status == "active")).first()
    if active is not None:
        known.update(active.labels)
    stored = session.exec(select(LabelledUtterance.label).where(
        (col(LabelledUtterance.community_id) == community_id) | col(LabelledUtterance.community_id).is_(None)
    ).distinct()).all()
    known.update(stored)
    return known


def _unknown_intent(ctx: CommandContext, intent: str, known: set[str]) -> str:
    """The refusal of an unknown intent: a did-you-mean when one is close, else the known intents."""
    close = difflib.get_close_matches(intent, sorted(known), n=1, cutoff=0.6)
    if close:
        options = close[0]
        return tr(
            ctx.language,
            f"Unknown intent {intent!r}. Did you mean {options}? To add a new intent, repeat with --new.",
            f"未知意图「{intent}」。你是想用 {options} 吗？如果要新增意图，请加上 --new 再发一次。")
    names = ", ".join(sorted(known))
    return tr(ctx.language,
              f"Unknown intent {intent!r}. Known intents: {names}. To add a new intent, repeat with --new.",
              f"未知意图「{intent}」。已有意图：{names}。如果要新增意图，请加上 --new 再发一次。")


def _language(ctx: CommandContext, text: str, row: MessageLog | None) -> str:
    """The utterance's language: the logged message's, else detected from the text, else the community's."""
    if row is not None and row.language:
        return row.language
    return detect_language(text) or ctx.settings.language


def _store(ctx: CommandContext, *, text: str, intent: str, language: str) -> str | None:
    """Insert the admin utterance, or relabel the one with this exact text; the label it had, if any."""
    existing = ctx.session.exec(select(LabelledUtterance).where(
        LabelledUtterance.community_id == ctx.community.id,
        LabelledUtterance.source == ADMIN_SOURCE,
        LabelledUtterance.text == text,
    )).first()
    previous = existing.label if existing is not None else None
    row = existing or LabelledUtterance(community_id=ctx.community.id, text=text, label=intent,
                                        source=ADMIN_SOURCE)
    row.label, row.language, row.created_at = intent, language, ctx.now
    ctx.session.add(row)
    ctx.session.flush()
    return previous


def _clear_review(ctx: CommandContext, *, text: str, row: MessageLog | None) -> list[int]:
    """Take the labelled message (by id), or the flagged messages with exactly ``text``, out of the review
    queue; their ids."""
    if row is not None:
        rows = [row]
    else:
        rows = list(ctx.session.exec(select(MessageLog).where(
            MessageLog.community_id == ctx.community.id,
            col(MessageLog.needs_review).is_(True),
            MessageLog.text == text,
        )).all())
    for found in rows:
        found.needs_review = False
        ctx.session.add(found)
    return [found.id for found in rows if found.id is not None]


def _labelled_reply(ctx: CommandContext, *, text: str, intent: str, new: bool, previous: str | None) -> Reply:
    shown = clip(text)
    en = f"Labelled “{shown}” as {intent}"
    zh = f"已把“{shown}”标注为 {intent}"
    if new:
        en, zh = en + " (a new intent)", zh + "（新意图）"
    if previous is not None and previous != intent:
        en, zh = en + f", was {previous}", zh + f"，原为 {previous}"
    return say(ctx, en + ". The next /bot retrain will learn it.", zh + "。下次 /机器人 训练 时会学到。")
