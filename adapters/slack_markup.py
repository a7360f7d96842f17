"""Slack's message markup, both ways: inbound mrkdwn to plain text, outbound text escaped.

Slack sends text with three characters escaped (``&`` as ``&amp;``, ``<`` as ``&lt;``, ``>`` as ``&gt;``)
and with mentions, channel links, links and broadcasts written in angle brackets:
``<@U123|ann>``, ``<#C123|events>``, ``<https://x.org|label>``, ``<!here>``, ``<!subteam^S1|@team>``
(https://api.slack.com/reference/surfaces/formatting). :func:`decode` turns that into the plain text a
person reads, exactly once; :func:`escape` does the reverse for text the bot echoes back; people also type
plain ``@name`` and ``#channel`` in slash commands (Slack leaves those as they are unless the command
escapes them), which :func:`resolve_plain_mentions` maps to ids through the workspace's user and channel
lists. Everything here is pure (no network).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: One piece of markup (``<...>``, no nesting) or one of the three entities Slack escapes.
_TOKEN = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_ENTITY = re.compile(r"&(amp|lt|gt);")
#: A link target inside ``<...>``: anything with a URI scheme (``https:``, ``mailto:``, ``tel:``).
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)
#: Broadcasts Slack writes as ``<!here>`` and their plain form.
_BROADCASTS = ("here", "channel", "everyone")
#: What may come right before a plain ``@name`` / ``#name``: nothing, a space or opening punctuation
#: (``host:@ann``), never a letter or digit (``ann@x.org``), ``<`` (markup) or ``/`` (``https://x/#top``).
_PLAIN_BEFORE = frozenset(" \t\r\n:([{,;\"'“‘（：，；、")
#: What a plain name that is not in the lists is made of (``@host_name``, ``#week-2``).
_PLAIN_NAME = re.compile(r"[\w.\-]+")


@dataclass(frozen=True)
class DecodedText:
    """Slack text made plain by :func:`decode`.

    Attributes:
        text: the plain text (``@ann`` for a user mention, ``#events`` for a channel, ``label (url)`` for a
            labelled link, ``&`` ``<`` ``>`` decoded once); emoji and other characters as they were.
        user_ids: the user ids mentioned, in order of first mention, each once (``("U123",)``).
        channel_ids: the channel ids linked, in order, each once.
        urls: the link targets (``https://...``, ``mailto:...``), in order, each once, entities decoded.
    """

    text: str
    user_ids: tuple[str, ...] = ()
    channel_ids: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


def _unescape(text: str) -> str:
    """``&amp;`` ``&lt;`` ``&gt;`` decoded in one pass (``&amp;lt;`` becomes ``&lt;``, not ``<``)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _lookup(names: Mapping[str, str] | None, key: str) -> str | None:
    """``names[key]``, also when ``key`` was lower-cased on the way (some exports do that to ids)."""
    if not names:
        return None
    return names.get(key) or names.get(key.upper()) or None


def _add(found: list[str], item: str) -> None:
    if item and item not in found:
        found.append(item)


def decode(
    text: str, *, users: Mapping[str, str] | None = None, channels: Mapping[str, str] | None = None
) -> DecodedText:
    """Slack's inbound mrkdwn ``text`` as plain text, decoded exactly once.

    - ``&amp;`` ``&lt;`` ``&gt;`` become ``&`` ``<`` ``>`` (only these three, one pass: ``&amp;lt;`` becomes
      ``&lt;``); other entities and characters, emoji included, stay as they are;
    - ``<@U123|ann>`` / ``<@U123>`` become ``@ann``: the label, else ``users[id]``, else the id;
    - ``<#C123|events>`` / ``<#C123|>`` / ``<#C123>`` become ``#events``: the label, else
      ``channels[id]``, else the id;
    - ``<https://x|label>`` becomes ``label (https://x)``; ``<https://x>`` becomes ``https://x``; a label
      that is just the link (Slack's autolinks, ``<http://x.org|x.org>``, ``<mailto:a@b.org|a@b.org>``)
      becomes the label alone;
    - ``<!here>`` ``<!channel>`` ``<!everyone>`` become ``@here`` ``@channel`` ``@everyone``;
      ``<!subteam^S1|@team>`` becomes ``@team``; ``<!date^...|fallback>`` becomes its fallback text;
    - anything else in angle brackets (not markup Slack writes) is kept as it is.

    Args:
        users: Slack user id -> display name, for mentions without a label (Slack's current format).
        channels: channel id -> name, for channel links without a label.

    Returns:
        DecodedText with the text and the user ids, channel ids and links it mentions.
    """
    user_ids: list[str] = []
    channel_ids: list[str] = []
    urls: list[str] = []

    def markup(inner: str) -> str | None:
        target, _, label = inner.partition("|")
        label = _unescape(label)
        if target.startswith("@") and len(target) > 1:
            _add(user_ids, target[1:])
            return "@" + (label.lstrip("@") or _lookup(users, target[1:]) or target[1:])
        if target.startswith("#") and len(target) > 1:
            _add(channel_ids, target[1:])
            return "#" + (label.lstrip("#") or _lookup(channels, target[1:]) or target[1:])
        if target.startswith("!") and len(target) > 1:
            special = target[1:]
            if special in _BROADCASTS:
                return "@" + special
            if special.startswith("subteam^"):
                return "@" + (label.lstrip("@") or special.removeprefix("subteam^"))
            return label or "@" + special
        if _SCHEME.match(target):
            url = _unescape(target)
            _add(urls, url)
            if not label:
                return url
            bare = _SCHEME.sub("", url).removeprefix("//").rstrip("/")
            if label in (url, bare, bare + "/"):
                return label
            return f"{label} ({url})"
        return None

    def replace(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return _ENTITIES[match.group(2)]
        decoded = markup(match.group(1))
        return match.group(0) if decoded is None else decoded

    plain = _TOKEN.sub(replace, text)
    return DecodedText(text=plain, user_ids=tuple(user_ids), channel_ids=tuple(channel_ids), urls=tuple(urls))


def strip_mention(text: str, bot_user_id: str) -> str:
    """``text`` (still in Slack's markup) without its mentions of the bot ``bot_user_id``.

    A leading mention goes with the spaces and punctuation right after it (``<@U_BOT>, hi`` -> ``hi``);
    a mention elsewhere goes with the spaces before it (``thanks <@U_BOT>!`` -> ``thanks!``). Mentions of
    other users stay. Ids are compared ignoring case. Call it before :func:`decode`.
    """
    if not bot_user_id:
        return text
    mention = rf"<@{re.escape(bot_user_id)}(?:\|[^<>]*)?>"
    text = re.sub(rf"^\s*(?:{mention}[\s,，:：;；.。!！?？、]*)+", "", text, flags=re.IGNORECASE)
    # the lookbehind starts the match only where a run of spaces starts: linear, not quadratic, in a long run
    text = re.sub(rf"(?<![ \t\u00a0\u2005\u3000])[ \t\u00a0\u2005\u3000]*{mention}", "", text,
                  flags=re.IGNORECASE)
    return text.strip()


def escape(text: str) -> str:
    """``text`` escaped for Slack: ``&`` ``<`` ``>`` as ``&amp;`` ``&lt;`` ``&gt;`` (nothing else), so that
    text the bot echoes back (an event title such as ``Q&A <beginners>``) shows as written instead of
    being read as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _match_name(
    text: str, start: int, names: list[tuple[str, str]], by_name: Mapping[str, str]
) -> tuple[str, int] | None:
    """The id of the name written at ``text[start:]`` and where it ends, or None.

    ``names`` are the known (casefolded name, id) pairs, longest first, so names with spaces
    (``Ann Lee``) are found; a known name must end at a word boundary."""
    for name, ident in names:
        end = start + len(name)
        at_boundary = end >= len(text) or not (text[end].isalnum() or text[end] in "_-")
        if at_boundary and text[start:end].casefold() == name:
            return ident, end
    token = _PLAIN_NAME.match(text, start)
    if token is None:
        return None
    word = token.group(0).rstrip(".")
    found = by_name.get(word.casefold())
    return (found, start + len(word)) if found else None


def resolve_plain_mentions(
    text: str, users_by_name: Mapping[str, str], channels_by_name: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """The user ids and channel ids that plain ``@name`` and ``#channel`` in ``text`` refer to.

    People type these in slash commands (``/event create ... host:@host_name channel:#events``), where
    Slack passes them on as typed. Names are compared ignoring case; a name with spaces is found when it
    is in ``users_by_name``; unknown names are ignored; the markup forms (``<@U1>``, ``<#C1|x>``) are left
    to :func:`decode`, as are ``@`` in e-mail addresses and ``#`` in links.

    Args:
        users_by_name: display name (or handle) -> user id, e.g. from Slack's ``users.list``.
        channels_by_name: channel name without ``#`` -> channel id, e.g. from ``conversations.list``.

    Returns:
        ``(user_ids, channel_ids)``, each in order of first appearance, without repeats.
    """
    users = {name.casefold().lstrip("@"): ident for name, ident in users_by_name.items() if name}
    chans = {name.casefold().lstrip("#"): ident for name, ident in channels_by_name.items() if name}
    user_names = sorted(users.items(), key=lambda item: -len(item[0]))
    channel_names = sorted(chans.items(), key=lambda item: -len(item[0]))
    user_ids: list[str] = []
    channel_ids: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "@#" and (i == 0 or text[i - 1] in _PLAIN_BEFORE):
            found = (_match_name(text, i + 1, user_names, users) if char == "@"
                     else _match_name(text, i + 1, channel_names, chans))
            if found is not None:
                _add(user_ids if char == "@" else channel_ids, found[0])
                i = found[1]
                continue
        i += 1
    return user_ids, channel_ids


MAX_NAME_CHARS = 200
"""A display name longer than this is cut (the members table allows 200 characters)."""


def user_display_name(user: Mapping[str, Any]) -> str:
    """The name to show for a Slack user object (``users.info``, ``users.list``, an export's users.json):
    the profile's display name, else the real name, else the handle, whitespace collapsed, at most
    :data:`MAX_NAME_CHARS`; ``""`` when Slack gives none."""
    profile = user.get("profile") or {}
    for value in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"),
                  user.get("name")):
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:MAX_NAME_CHARS]
    return ""
