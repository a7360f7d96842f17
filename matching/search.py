"""The :class:`bot.ports.Matcher` over FAISS: ranks a community's members, resources and events.

A query is embedded once, each requested kind's index is searched (over-fetching so that filters do not
starve the result), the hits are re-read from the database and filtered (members: ``consent_suggest``;
events: ``scheduled`` and, when ``upcoming_only``, ``(ends_at or starts_at) >= now``), merged over kinds by
score, stripped of near-duplicates (same title and url) and cut to ``top_k``.

The score is the dense cosine similarity of L2-normalised embeddings, in [-1, 1]. A later lexical
(BM25) fusion belongs in :meth:`IndexedMatcher._score`; the cosine stays available on each candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.db import session_scope
from bot.messages import Match, MatchKind
from bot.models import Event, utcnow
from matching.documents import KINDS, TABLES, DocField, Document, explain, is_indexable, overlaps, to_document
from matching.embedder import TextEmbedder, l2_normalise
from matching.index import IndexStore

log = logging.getLogger(__name__)

#: Default minimum score of a match shown in replies (``Match.below_threshold`` is set under it).
DEFAULT_THRESHOLD = 0.35
_EXPLAIN_CHARS = 300


@dataclass(frozen=True, slots=True)
class _Candidate:
    document: Document
    cosine: float
    score: float


class IndexedMatcher:
    """Ranks members, resources and events of a community; implements :class:`bot.ports.Matcher`.

    Args:
        engine: the database engine (the source of truth; indexes follow it by themselves).
        data_dir: the data directory; indexes live under ``<data_dir>/index/<community_id>/``.
        embedder: a :class:`matching.embedder.TextEmbedder` (``SentenceTransformerEmbedder`` in production,
            ``HashingEmbedder`` in tests).
        default_threshold: threshold used when ``search`` gets ``threshold=None``, in [-1, 1].
        overfetch: FAISS is asked for ``top_k * overfetch`` ids per kind before filtering (and more,
            repeatedly, while filters leave fewer than ``top_k``).
        clock: returns the aware current time (``upcoming_only``); injectable for tests.
        explain_with_embeddings: when no field of a result shares a word with the query, embed its fields
            to name the one closest in meaning in ``Match.why`` (a few short passages per search).
    """

    def __init__(
        self, *, engine: Engine, data_dir: Path | str, embedder: TextEmbedder,
        default_threshold: float = DEFAULT_THRESHOLD, overfetch: int = 4,
        clock: Callable[[], datetime] = utcnow, explain_with_embeddings: bool = True,
    ) -> None:
        self._engine = engine
        self._embedder = embedder
        self._store = IndexStore(engine=engine, data_dir=data_dir, embedder=embedder)
        self._default_threshold = default_threshold
        self._overfetch = max(1, overfetch)
        self._clock = clock
        self._explain_with_embeddings = explain_with_embeddings

    @property
    def store(self) -> IndexStore:
        """The underlying :class:`matching.index.IndexStore` (sizes, ids, paths)."""
        return self._store

    # --- bot.ports.Matcher ------------------------------------------------------------------------------

    def search(
        self, *, community_id: int, query: str, kinds: Sequence[MatchKind], top_k: int = 5,
        threshold: float | None = None, upcoming_only: bool = True,
    ) -> list[Match]:
        """The ``top_k`` best matches for ``query`` over ``kinds``, best first, ``below_threshold`` set.

        Returns ``[]`` for an empty community, a blank query or ``top_k <= 0``; fewer than ``top_k`` when
        fewer items qualify. Syncs the indexes with the database first (one aggregate query per kind when
        nothing changed).

        Raises:
            ValueError: a kind other than ``member``, ``resource``, ``event``.
        """
        return self.search_many(community_id=community_id, queries=[query], kinds=kinds, top_k=top_k,
                                threshold=threshold, upcoming_only=upcoming_only)[0]

    def sync(self, *, community_id: int) -> None:
        """Bring every index of ``community_id`` in step with the database."""
        self._store.sync(community_id=community_id, kinds=KINDS)

    # --- extras -----------------------------------------------------------------------------------------

    def search_many(
        self, *, community_id: int, queries: Sequence[str], kinds: Sequence[MatchKind], top_k: int = 5,
        threshold: float | None = None, upcoming_only: bool = True,
    ) -> list[list[Match]]:
        """:meth:`search` for several queries at once (one embedding call); one list per query, in order."""
        results: list[list[Match]] = [[] for _ in queries]
        kinds = list(dict.fromkeys(kinds))
        for kind in kinds:
            if kind not in TABLES:
                raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        active = [i for i, q in enumerate(queries) if q.strip()]
        if top_k <= 0 or not kinds or not active:
            return results
        self._store.sync(community_id=community_id, kinds=kinds)
        sizes = {k: self._store.size(community_id=community_id, kind=k) for k in kinds}
        if not any(sizes.values()):
            return results
        texts = [queries[i].strip() for i in active]
        qvecs = l2_normalise(self._embedder.embed_queries(texts))
        per_query: list[list[_Candidate]] = [[] for _ in active]
        now = self._clock()
        for kind in kinds:
            if sizes[kind]:
                found = self._candidates(community_id, kind, qvecs, top_k, sizes[kind], upcoming_only, now)
                for bucket, cands in zip(per_query, found, strict=True):
                    bucket.extend(cands)
        limit = self._default_threshold if threshold is None else threshold
        ranked = [_dedupe(sorted(c, key=_order))[:top_k] for c in per_query]
        whys = self._explain(texts, qvecs, ranked)
        for slot, cands, reasons in zip(active, ranked, whys, strict=True):
            results[slot] = [
                Match(kind=c.document.kind, id=c.document.id, title=c.document.title, score=c.score,
                      why=why, below_threshold=c.score < limit, url=c.document.url, detail=c.document.detail)
                for c, why in zip(cands, reasons, strict=True)
            ]
        return results

    def rebuild(self, *, community_id: int, kind: MatchKind | None = None) -> dict[MatchKind, int]:
        """Rebuild one kind's index (or all, when ``kind`` is ``None``) from the database.

        Returns:
            vectors held per rebuilt kind.
        """
        return self._store.rebuild(community_id=community_id, kinds=KINDS if kind is None else (kind,))

    def index_sizes(self, *, community_id: int) -> dict[MatchKind, int]:
        """Vectors per kind after a sync (for ``/bot status``)."""
        self.sync(community_id=community_id)
        return {k: self._store.size(community_id=community_id, kind=k) for k in KINDS}

    # --- internals --------------------------------------------------------------------------------------

    def _score(self, cosine: float) -> float:
        """The ranking score of a hit; today the cosine itself (a BM25 fusion would combine here)."""
        return cosine

    def _candidates(
        self, community_id: int, kind: MatchKind, qvecs: np.ndarray, top_k: int, size: int,
        upcoming_only: bool, now: datetime,
    ) -> list[list[_Candidate]]:
        """Filtered candidates of one kind for each query row, fetching deeper while filters starve them."""
        k = min(size, top_k * self._overfetch)
        out: list[list[_Candidate]] = [[] for _ in range(qvecs.shape[0])]
        pending = list(range(qvecs.shape[0]))
        while pending:
            hits = self._store.search(community_id=community_id, kind=kind, queries=qvecs[pending], k=k)
            docs = self._load(community_id, kind, {i for row in hits for i, _ in row}, upcoming_only, now)
            still = []
            for qi, row in zip(pending, hits, strict=True):
                out[qi] = [_Candidate(docs[i], cos, self._score(cos)) for i, cos in row if i in docs]
                if len(out[qi]) < top_k and len(row) >= k and k < size:
                    still.append(qi)
            pending, k = still, min(size, k * 4)
        return out

    def _load(
        self, community_id: int, kind: MatchKind, ids: set[int], upcoming_only: bool, now: datetime,
    ) -> dict[int, Document]:
        """Re-read the hit rows (dropping rows deleted, withdrawn or past since indexing) as documents."""
        if not ids:
            return {}
        table: Any = TABLES[kind]
        with session_scope(self._engine) as session:
            rows = session.exec(
                select(table).where(col(table.id).in_(sorted(ids)), col(table.community_id) == community_id)
            ).all()
            keep = [r for r in rows if is_indexable(r) and (not upcoming_only or _upcoming(r, now))]
            return {r.id: to_document(r) for r in keep}

    def _explain(
        self, texts: Sequence[str], qvecs: np.ndarray, ranked: Sequence[Sequence[_Candidate]],
    ) -> list[list[str]]:
        """``Match.why`` for every ranked candidate; fields are embedded only where no word is shared."""
        best_field: dict[tuple[int, int], str] = {}
        if self._explain_with_embeddings:
            wanted = [(qi, ci, c.document) for qi, cands in enumerate(ranked) for ci, c in enumerate(cands)
                      if not any(o.shared for o in overlaps(texts[qi], c.document))]
            fields: list[tuple[int, int, DocField]] = []
            for qi, ci, d in wanted:
                own = [f for f in d.fields if f.label not in ("name", "title")]
                if len(own) > 1:  # one field needs no comparison (explain() names it)
                    fields.extend((qi, ci, f) for f in own)
            if fields:
                # the first ~300 characters of each field are enough to tell which one is about the query
                vecs = self._embedder.embed_passages([f.text[:_EXPLAIN_CHARS] for _, _, f in fields])
                sims = np.einsum("ij,ij->i", vecs, qvecs[[qi for qi, _, _ in fields]])
                best: dict[tuple[int, int], float] = {}
                for (qi, ci, f), sim in zip(fields, sims, strict=True):
                    if sim > best.get((qi, ci), -2.0):
                        best[(qi, ci)], best_field[(qi, ci)] = float(sim), f.label
        return [[explain(query=texts[qi], document=c.document, best_field=best_field.get((qi, ci)))
                 for ci, c in enumerate(cands)] for qi, cands in enumerate(ranked)]


def _upcoming(row: Any, now: datetime) -> bool:
    if not isinstance(row, Event):
        return True
    return (row.ends_at or row.starts_at) >= now


def _order(c: _Candidate) -> tuple[float, int, int]:
    return (-c.score, KINDS.index(c.document.kind), c.document.id)


def _dedupe(cands: Sequence[_Candidate]) -> list[_Candidate]:
    """Drop near-duplicates, keeping the best: same title and url; without a url, same title and detail."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for c in cands:
        d = c.document
        title = " ".join(d.title.casefold().split())
        url = d.url.strip().rstrip("/").casefold()
        key = ("url", title, url) if url else ("nourl", d.kind, title, " ".join(d.detail.casefold().split()))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
