"""What is embedded for each kind of row, and how a result is shown (title, detail, url, why).

Each indexable row (:class:`bot.models.Member`, :class:`bot.models.Resource`, :class:`bot.models.Event`)
becomes a :class:`Document`: labelled fields, the passage text built from them, and the display parts of a
:class:`bot.messages.Match`. Which rows are indexable at all is decided here too (:func:`indexable_clause`):
members only with ``consent_suggest``, events only while ``scheduled``; every resource.

Truncation of long passages happens in the embedding model (its ``max_seq_length``), not here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col

from bot.events import event_when
from bot.messages import MatchKind
from bot.models import Event, EventStatus, Member, Resource
from bot.timefmt import zone_or_utc
from matching.lexical import CJK_RUN_RE, CJK_STOPWORDS, LATIN_RE, STOPWORDS, stem

#: Every kind the matcher indexes, in the order used when a caller asks for "all".
KINDS: tuple[MatchKind, ...] = ("member", "resource", "event")

#: The table behind each kind.
TABLES: dict[MatchKind, type[SQLModel]] = {"member": Member, "resource": Resource, "event": Event}

DETAIL_CHARS = 140
_PLAIN_LABELS = frozenset({"name", "title", "description"})
_WHY_VALUE_CHARS = 60


@dataclass(frozen=True, slots=True)
class DocField:
    """One labelled part of a document, e.g. ``DocField("offers", "angel investing, intros")``."""

    label: str
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    """The embeddable and displayable form of one database row.

    Attributes:
        kind: ``member``, ``resource`` or ``event``.
        id: the row's database id.
        title: display name / resource title / event title.
        url: a link (member or resource ``url``, event ``link``); ``""`` if none.
        detail: a one-line summary (at most ~140 characters of prose plus location / date and place).
        fields: the labelled fields, in passage order; empty fields are left out.
    """

    kind: MatchKind
    id: int
    title: str
    url: str
    detail: str
    fields: tuple[DocField, ...]

    @property
    def text(self) -> str:
        """The passage to embed: one line per field; name, title and description as they are, the other
        fields as ``Label: text`` (``Offers: angel investing``).

        The title is unlabelled so that a question stored as a title (an FAQ) embeds exactly like the
        same question asked as a query.
        """
        return "\n".join(f.text if f.label in _PLAIN_LABELS else f"{f.label.capitalize()}: {f.text}"
                         for f in self.fields)


def indexable_clause(kind: MatchKind) -> sa.ColumnElement[bool]:
    """The SQL condition a row of ``kind`` must meet to be in the index (consent, not cancelled)."""
    if kind == "member":
        return col(Member.consent_suggest).is_(sa.true())
    if kind == "event":
        return col(Event.status) == EventStatus.SCHEDULED
    return sa.true()


def is_indexable(row: Any) -> bool:
    """Python twin of :func:`indexable_clause`, checked again on the rows a search returns."""
    if isinstance(row, Member):
        return bool(row.consent_suggest)
    if isinstance(row, Event):
        return row.status == EventStatus.SCHEDULED
    return isinstance(row, Resource)


def to_document(row: Member | Resource | Event) -> Document:
    """Build the :class:`Document` of a member, resource or event row (which must have an id).

    Raises:
        TypeError: ``row`` is not one of the three indexed tables.
        ValueError: the row has no id yet (not flushed to the database).
    """
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no database id yet; flush it first")
    if isinstance(row, Member):
        return _member_document(row, row.id)
    if isinstance(row, Resource):
        return _resource_document(row, row.id)
    if isinstance(row, Event):
        return _event_document(row, row.id)
    raise TypeError(f"not an indexed row: {type(row).__name__}")


def _fields(*pairs: tuple[str, str | None]) -> tuple[DocField, ...]:
    return tuple(DocField(label, one_line(text)) for label, text in pairs if text and text.strip())


def _member_document(m: Member, id_: int) -> Document:
    fields = _fields(("name", m.display_name), ("bio", m.bio), ("skills", m.skills), ("offers", m.offers),
                     ("needs", m.needs), ("location", m.location))
    prose = one_line(m.bio) or one_line(m.offers) or one_line(m.skills)
    detail = _join(clip(prose, DETAIL_CHARS), one_line(m.location))
    return Document("member", id_, m.display_name, m.url or "", detail, fields)


def _resource_document(r: Resource, id_: int) -> Document:
    fields = _fields(("title", r.title), ("description", r.description), ("tags", _tags(r.tags)))
    detail = clip(one_line(r.description), DETAIL_CHARS) or _tags(r.tags)
    return Document("resource", id_, r.title, r.url or "", detail, fields)


def _event_document(e: Event, id_: int) -> Document:
    fields = _fields(("title", e.title), ("description", e.description), ("place", e.place))
    when = event_when(e, tz=zone_or_utc(e.timezone), language="en")
    detail = _join(f"{when} {e.timezone or 'UTC'}", one_line(e.place))
    return Document("event", id_, e.title, e.link or "", detail, fields)


def _tags(tags: str) -> str:
    return ", ".join(t.strip() for t in re.split(r"[,，]", tags or "") if t.strip())


def one_line(text: str | None) -> str:
    """``text`` with every run of whitespace (newlines too) made one space, trimmed; ``""`` for ``None``."""
    return " ".join((text or "").split())


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, on a word boundary when that keeps at least half, with
    "…" when cut (Chinese, which has no spaces, is cut at the limit)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2:]:  # end on a word boundary unless that loses more than half (e.g. Chinese)
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;.，。") + "…"


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


# --- why: which field matched, and the words it shares with the query --------------------------------

@dataclass(frozen=True, slots=True)
class FieldOverlap:
    """The query words one field shares (``shared``, in query order) and the field itself."""

    field: DocField
    shared: tuple[str, ...]


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """Content words of ``query``: (latin words without stop words, CJK runs), lower-cased."""
    low = query.lower()
    latin = [w for w in LATIN_RE.findall(low) if w not in STOPWORDS and len(w) > 1]
    cjk = CJK_RUN_RE.findall(low)
    return list(dict.fromkeys(latin)), cjk


def _latin_hit(word: str, field_words: set[str]) -> bool:
    if word in field_words:
        return True
    if len(word) < 4:
        return False
    root = stem(word)
    for fw in field_words:
        other = stem(fw)
        if other == root or (len(other) >= 4 and abs(len(other) - len(root)) <= 3
                             and (other.startswith(root) or root.startswith(other))):
            return True
    return False


def _cjk_hits(runs: Sequence[str], text: str) -> list[str]:
    hits: list[str] = []
    for run in runs:
        i = 0
        while i < len(run) - 1:
            best = ""
            for j in range(len(run), i + 1, -1):  # longest substring of length >= 2 starting at i
                if run[i:j] in text:
                    best = run[i:j]
                    break
            if best and best not in CJK_STOPWORDS:
                hits.append(best)
                i += len(best)
            else:
                i += 1
    return hits


def overlaps(query: str, document: Document) -> list[FieldOverlap]:
    """For each field of ``document``, the query's content words found in it (exact, plural or stem)."""
    latin, cjk = query_terms(query)
    out = []
    for f in document.fields:
        low = f.text.lower()
        words = set(LATIN_RE.findall(low))
        shared = [w for w in latin if _latin_hit(w, words)] + _cjk_hits(cjk, low)
        out.append(FieldOverlap(f, tuple(dict.fromkeys(shared))))
    return out


def explain(*, query: str, document: Document, best_field: str | None = None) -> str:
    """A short reason for a match, e.g. ``offers: angel investing, intros; shares 'angel'``.

    Picks the field sharing the most query words (ties: the earlier, more specific field after the title);
    when no field shares a word, uses ``best_field`` (the label of the field closest in meaning, chosen by
    the caller from field embeddings) and says ``close in meaning``.
    """
    scored = overlaps(query, document)
    best = max(scored, key=lambda o: (len(o.shared), o.field.label not in ("name", "title")), default=None)
    if best is not None and best.shared:
        quoted = ", ".join(f"'{w}'" for w in best.shared[:4])
        return f"{best.field.label}: {_snippet(best.field.text, best.shared[0])}; shares {quoted}"
    field = next((f for f in document.fields if f.label == best_field), None)
    if field is None:
        field = next((f for f in document.fields if f.label not in ("name", "title")), None)
    if field is None:
        return "close in meaning"
    return f"{field.label}: {_snippet(field.text, '')}; close in meaning"


def _snippet(text: str, word: str, width: int = _WHY_VALUE_CHARS) -> str:
    """About ``width`` characters of ``text``, from the start or around ``word``, cut on word boundaries."""
    if len(text) <= width:
        return text
    at = text.lower().find(word.lower()) if word else -1
    if at < 0 or at + len(word) <= width - 10:
        return clip(text, width)
    start = max(0, at - width // 3)
    end = min(len(text), start + width)
    piece = text[start:end]
    if start > 0 and " " in piece[:15]:
        piece = piece[piece.index(" ") + 1:]
    if end < len(text):
        if " " in piece[len(piece) // 2:]:
            piece = piece.rsplit(" ", 1)[0]
        piece = piece.rstrip(" ,;.，。") + "…"
    return ("…" if start > 0 else "") + piece
