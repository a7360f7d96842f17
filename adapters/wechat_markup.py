"""WeChat text, both ways: mentions of the bot found and removed inbound, replies rendered and split outbound.

Inbound, a room message addresses the bot with ``@Name`` followed by U+2005 (FOUR-PER-EM SPACE, what the
WeChat client puts after a mention picked from the member list), by a typed space, or at the end of the
text. ``Name`` may be the bot's WeChat nickname, its alias in that room, or a name the deployment
configures, in any case and width (compared after NFKC and case folding). :func:`find_mention` is a plain
function returning a value (case W1: never a coroutine, whose truthiness would make every message
"addressed").

Outbound, WeChat shows plain text only: :func:`render_text` writes a reply's RSVP buttons as reply codes
(``回复「报名 3」参加``) and :func:`split_text` cuts long replies at line boundaries into parts under a byte
limit, in order.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.commands.rsvp import reply_code
from bot.i18n import tr
from bot.messages import Reply

#: U+2005 FOUR-PER-EM SPACE: WeChat's separator after a mention.
MENTION_SPACE = "\u2005"
_AT = ("@", "＠")
#: Spaces trimmed where a mention was cut out (the rest of the text is left as it was).
_JOIN_SPACES = " \t\u2005\u3000"


@dataclass(frozen=True, slots=True)
class Mention:
    """What :func:`find_mention` found.

    Attributes:
        addressed: the text mentions the bot.
        text: the text with every mention of the bot (and the space after it) removed, spaces at the
            joins collapsed, stripped; the text itself, stripped, when there is no mention.
    """

    addressed: bool
    text: str


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _ends_name(text: str, end: int) -> bool:
    """A name may end at ``end``: the text ends, or a space or punctuation follows (never a letter or digit:
    ``@CommunityBotFan`` is somebody else)."""
    if end >= len(text):
        return True
    category = unicodedata.category(text[end])
    return text[end].isspace() or category.startswith(("P", "S", "Z"))


def _name_end(text: str, start: int, name: str) -> int | None:
    """The end of ``name`` when ``text[start:]`` begins with it (folded, character by character), else
    ``None``."""
    folded = ""
    for index in range(start, len(text)):
        folded += _fold(text[index])
        if folded == name:
            return index + 1
        if not name.startswith(folded):
            return None
    return None


def find_mention(text: str, names: Iterable[str], *, mentioned: bool = False) -> Mention:
    """Find and remove mentions of the bot in a room message.

    Args:
        text: the message text as the gateway gave it.
        names: what the bot is called: its nickname, its alias in this room, configured extra names. Empty
            names are ignored; the longest name that fits wins (``@Community Bot`` over ``@Community``).
        mentioned: the gateway says the bot is mentioned (its id is in the message's ``mentionIdList``).
            The mention text is then removed even when the name in it matches none of ``names`` (the
            member's client may show an older nickname): the first ``@...`` run ended by U+2005.

    Returns:
        :class:`Mention`; ``addressed`` is ``True`` when a name matched or ``mentioned`` was given.
    """
    folded_names = sorted({_fold(n.strip()) for n in names if n and n.strip()}, key=len, reverse=True)
    pieces: list[str] = []
    found = False
    position = 0
    index = 0
    while index < len(text):
        # ``ann@x.org`` is no mention; a letter of a mention just cut out (``@Bot@Bot``) does not count
        if text[index] not in _AT or (index > position and text[index - 1].isalnum()):
            index += 1
            continue
        end = None
        for name in folded_names:
            candidate = _name_end(text, index + 1, name)
            if candidate is not None and _ends_name(text, candidate):
                end = candidate
                break
        if end is None:
            index += 1
            continue
        found = True
        pieces.append(text[position:index])
        if end < len(text) and text[end] in (MENTION_SPACE, " ", "\u3000"):
            end += 1
        position = index = end
    if not found and mentioned:
        start = next((i for i, ch in enumerate(text) if ch in _AT), -1)
        stop = text.find(MENTION_SPACE, start + 1) if start >= 0 else -1
        if start >= 0 and stop > start:
            pieces.append(text[:start])
            position = stop + 1
    pieces.append(text[position:])
    joined = " ".join(p.strip(_JOIN_SPACES) for p in pieces if p.strip(_JOIN_SPACES))
    return Mention(addressed=found or mentioned, text=joined.strip())


def render_text(reply: Reply) -> str:
    """A reply as WeChat plain text: its text, then its RSVP buttons as reply codes on one line
    (``回复「报名 3」或「不去 3」即可。``); other buttons (helpful / not helpful) are left out, people
    answer those in words."""
    codes: list[str] = []
    for button in reply.buttons:
        code = reply_code(button.action, button.value, language=reply.language)
        if code is not None:
            codes.append(tr(reply.language, f"“{code}”", f"「{code}」"))
    if not codes:
        return reply.text
    hint = tr(reply.language, "Reply " + " or ".join(codes) + " to answer.",
              "回复" + "或".join(codes) + "即可。")
    return f"{reply.text}\n{hint}"


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_line(line: str, max_bytes: int) -> list[str]:
    """A line longer than ``max_bytes`` cut into pieces that fit, at the last space or punctuation that
    fits when there is one in the second half, else at a character boundary (never inside a character)."""
    pieces: list[str] = []
    rest = line
    while _utf8_len(rest) > max_bytes:
        size, fit = 0, 0
        for fit, ch in enumerate(rest):  # noqa: B007 - fit is used after the loop
            size += _utf8_len(ch)
            if size > max_bytes:
                break
        cut = fit
        for back in range(fit - 1, fit // 2, -1):
            if rest[back].isspace() or unicodedata.category(rest[back]).startswith("P"):
                cut = back + 1
                break
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def split_text(text: str, *, max_bytes: int) -> list[str]:
    """``text`` in parts of at most ``max_bytes`` UTF-8 bytes, cut at line boundaries, in order.

    Lines are packed greedily; a single line over the limit is cut by :func:`_cut_line`. Blank lines at a
    cut are dropped; an empty or blank text gives ``[]``.

    Raises:
        ValueError: ``max_bytes`` is under 16 (no room for a line of a few Chinese characters).
    """
    if max_bytes < 16:
        raise ValueError(f"max_bytes must be at least 16, not {max_bytes}")
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines():
        for piece in _cut_line(line, max_bytes) if line else [""]:
            extra = _utf8_len(piece) + (1 if current else 0)
            if current and size + extra > max_bytes:
                parts.append("\n".join(current).strip("\n"))
                current, size = [], 0
                extra = _utf8_len(piece)
            current.append(piece)
            size += extra
    if current:
        parts.append("\n".join(current).strip("\n"))
    return [p for p in parts if p.strip()]
