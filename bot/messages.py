"""Platform-neutral message types: what adapters hand to the core and what the core hands back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

MatchKind = Literal["member", "resource", "event"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from a platform, already cleaned by its adapter.

    Attributes:
        platform: ``console``, ``slack`` or ``wechat``.
        community: the community *name* the conversation belongs to.
        conversation: platform id of the channel / room / DM.
        sender: platform user id of the author.
        text: plain text, mentions of the bot removed, markup decoded.
        received_at: aware datetime of the platform's timestamp.
        thread: platform id of the thread root, if the message is in a thread.
        sender_name: display name, when the platform gives one.
        is_direct: a one-to-one conversation with the bot.
        mentions_bot: the bot was mentioned.
        platform_key: de-duplication key (e.g. ``slack:C1:1700000000.000100``); ``None`` = never duplicated.
        intent: the intent when the platform states it (a "not helpful" button is ``feedback``): the
            classifier is skipped; ``None`` for typed messages.
    """

    platform: str
    community: str
    conversation: str
    sender: str
    text: str
    received_at: datetime
    thread: str | None = None
    sender_name: str = ""
    is_direct: bool = False
    mentions_bot: bool = False
    platform_key: str | None = None
    intent: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The message as JSON-ready values (``received_at`` in ISO 8601), for :meth:`from_payload`."""
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> IncomingMessage:
        """The message :meth:`to_payload` wrote (unknown keys are ignored).

        Raises:
            KeyError / ValueError: ``data`` lacks a field or holds a bad date.
        """
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["received_at"] = datetime.fromisoformat(str(data["received_at"]))
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked search result.

    Attributes:
        kind: ``member``, ``resource`` or ``event``.
        id: the database id of the row.
        title: display name (member / company), resource or event title.
        score: the ranking score used for ordering and the threshold: the FAISS matcher's fused score,
            cosine similarity of normalised embeddings plus a weighted BM25 coverage
            (:func:`matching.search.fused_score`), in [-1, 1 + weight].
        why: a short human explanation (matched words, the profile field that matched).
        below_threshold: ``True`` when ``score`` is under the community's match threshold.
        url: a link to show, when the row has one.
        detail: a one-line summary for replies (pitch, description, date and place).
        cosine: the dense cosine similarity alone, in [-1, 1], reported beside the fused ``score`` (case N2
            of the real-world cases); ``None`` from matchers without embeddings.
    """

    kind: MatchKind
    id: int
    title: str
    score: float
    why: str = ""
    below_threshold: bool = False
    url: str = ""
    detail: str = ""
    cosine: float | None = None

    def to_json(self) -> dict[str, object]:
        """The match as the CLI's JSON shape
        ``{"kind","id","title","score","cosine","why","below_threshold"}`` (``cosine``: ``null`` when the
        matcher has none)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "score": round(float(self.score), 4),
            "cosine": None if self.cosine is None else round(float(self.cosine), 4),
            "why": self.why,
            "below_threshold": self.below_threshold,
        }


@dataclass(frozen=True, slots=True)
class Button:
    """An action a platform may render as a button (Slack) or a text hint (WeChat, console)."""

    label: str
    action: str
    value: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One platform-neutral reply.

    Attributes:
        text: the reply in plain text (adapters may render richer forms from ``matches``/``buttons``).
        language: ``en`` or ``zh``.
        matches: the matches the text talks about, in order.
        buttons: optional actions (RSVP, helpful / not helpful).
        private: show only to the asker (Slack ephemeral, WeChat DM).
        attachment: the path of a picture to show with the text where the platform allows pictures (Slack
            uploads it; WeChat and the console show the text only); ``""`` for none.
        key: the reply's key in the reply journal (:mod:`bot.delivery`), ``""`` when it is not journalled:
            the adapter tags the post with it and records it sent.
    """

    text: str
    language: str = "en"
    matches: tuple[Match, ...] = field(default_factory=tuple)
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    private: bool = False
    attachment: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class HandledMessage:
    """What the core did with one message: the replies plus what the CLI's ``ask --json`` reports.

    ``failed`` is set when handling raised and the replies are the apology (the CLI then exits non-zero).
    """

    replies: tuple[Reply, ...]
    intent: str | None = None
    confidence: float | None = None
    language: str = "en"
    matches: tuple[Match, ...] = ()
    duplicate: bool = False
    failed: bool = False

    @property
    def text(self) -> str:
        """All reply texts joined by blank lines."""
        return "\n\n".join(r.text for r in self.replies)
