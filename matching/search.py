"""The :class:`bot.ports.Matcher` over FAISS: ranks a community's members, resources and events.

A query is embedded and tokenised once; for each requested kind, the dense index (cosine) and the BM25
index (coverage) each propose candidates (over-fetching so that filters do not starve the result), every
candidate gets both scores, the rows are re-read from the database and filtered (members:
``consent_suggest``; events: ``scheduled`` and, when ``upcoming_only``, ``(ends_at or starts_at) >= now``),
merged over kinds by score, stripped of near-duplicates (same title and url) and cut to ``top_k``.

The score fuses the two: ``cosine + lexical_weight * coverage`` (:func:`fused_score`), where ``coverage``
in [0, 1] is the share of the query's BM25 weight the document covers (:mod:`matching.lexical`). A convex
or linear combination of normalised scores rather than reciprocal-rank fusion, because the bot needs an
absolute score to threshold, not only an order (Bruch et al., 2023, "An Analysis of Fusion Functions for
Hybrid Retrieval", ACM TOIS, found the convex combination also ranks better than RRF once tuned). The
weight and the threshold are per embedding model (:class:`nlp.base_model.BaseModelSpec`), tuned in
``bench/matching.py``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.db import session_scope
from bot.language import dominant_language, language_code, language_codes
from bot.messages import Match, MatchKind
from bot.models import Event, Member, utcnow
from matching.documents import KINDS, TABLES, DocField, Document, explain, is_indexable, overlaps, to_document
from matching.embedder import TextEmbedder, l2_normalise
from matching.index import DEFAULT_APPROXIMATE_FROM, DEFAULT_NPROBE, IndexStore

log = logging.getLogger(__name__)

#: Default minimum score of a match shown in replies (``Match.below_threshold`` is set under it).
DEFAULT_THRESHOLD = 0.35
#: Default weight of the BM25 coverage in the fused score.
DEFAULT_LEXICAL_WEIGHT = 0.1
_EXPLAIN_CHARS = 300
#: Field embeddings kept for explanations (384 floats each: 4,096 fields take 6 MB).
_EXPLAIN_CACHE_SIZE = 4096


def fused_score(*, cosine: float, coverage: float, lexical_weight: float) -> float:
    """The ranking score of a candidate: ``cosine + lexical_weight * coverage``.

    Args:
        cosine: dense cosine similarity in [-1, 1].
        coverage: BM25 coverage in [0, 1] (:meth:`matching.lexical.LexicalIndex.scores`).
        lexical_weight: the weight of the lexical side, >= 0 (0: dense only).
    """
    return float(cosine) + float(lexical_weight) * float(coverage)


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
        default_threshold: threshold on the fused score used when ``search`` gets ``threshold=None``.
        lexical_weight: weight of the BM25 coverage in the fused score (:func:`fused_score`); 0 ranks by
            the cosine alone.
        overfetch: FAISS is asked for ``top_k * overfetch`` ids per kind before filtering (and more,
            repeatedly, while filters leave fewer than ``top_k``).
        clock: returns the aware current time (``upcoming_only``); injectable for tests.
        explain_with_embeddings: when no field of a result shares a word with the query, embed its fields
            to name the one closest in meaning in ``Match.why`` (a few short passages per search).
        store: an existing :class:`matching.index.IndexStore` to use (benchmarks); one is made otherwise.
        approximate_from: indexes of at least this many items are approximate (IVF), see
            :class:`matching.index.IndexStore`.
        nprobe: inverted lists an approximate index visits per query.
    """

    def __init__(
        self, *, engine: Engine, data_dir: Path | str, embedder: TextEmbedder,
        default_threshold: float = DEFAULT_THRESHOLD, lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
        overfetch: int = 4, clock: Callable[[], datetime] = utcnow, explain_with_embeddings: bool = True,
        store: IndexStore | None = None, approximate_from: int = DEFAULT_APPROXIMATE_FROM,
        nprobe: int = DEFAULT_NPROBE,
    ) -> None:
        self._engine = engine
        self._embedder = embedder
        self._store = store or IndexStore(engine=engine, data_dir=data_dir, embedder=embedder,
                                          approximate_from=approximate_from, nprobe=nprobe)
        self._default_threshold = default_threshold
        self._lexical_weight = max(0.0, float(lexical_weight))
        self._overfetch = max(1, overfetch)
        self._clock = clock
        self._explain_with_embeddings = explain_with_embeddings
        # field text -> its passage embedding, for explanations (profiles change rarely; re-embedding the
        # candidates' fields on every search cost ~200 ms a search on 2 cores, measured by bench/load.py)
        self._field_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._field_lock = threading.Lock()

    @property
    def embedder(self) -> TextEmbedder:
        """The embedder of queries and passages."""
        return self._embedder

    @property
    def threshold(self) -> float:
        """The default threshold on the fused score (``Match.below_threshold`` is set under it)."""
        return self._default_threshold

    @property
    def store(self) -> IndexStore:
        """The underlying :class:`matching.index.IndexStore` (sizes, ids, paths)."""
        return self._store

    # --- bot.ports.Matcher ------------------------------------------------------------------------------

    def search(
        self, *, community_id: int, query: str, kinds: Sequence[MatchKind], top_k: int = 5,
        threshold: float | None = None, upcoming_only: bool = True, languages: Sequence[str] | None = None,
    ) -> list[Match]:
        """The ``top_k`` best matches for ``query`` over ``kinds``, best first, ``below_threshold`` set.

        ``languages``, when given, keeps members who share one of them (or state none) and resources and
        events whose text is mainly (:func:`bot.language.dominant_language`) in one of them.

        Returns ``[]`` for an empty community, a blank query or ``top_k <= 0``; fewer than ``top_k`` when
        fewer items qualify. Syncs the indexes with the database first (one primary-key lookup of the
        change counter per kind when nothing changed).

        Raises:
            ValueError: a kind other than ``member``, ``resource``, ``event``.
        """
        return self.search_many(community_id=community_id, queries=[query], kinds=kinds, top_k=top_k,
                                threshold=threshold, upcoming_only=upcoming_only, languages=languages)[0]

    def sync(self, *, community_id: int) -> None:
        """Bring every index of ``community_id`` in step with the database."""
        self._store.sync(community_id=community_id, kinds=KINDS)

    # --- extras -----------------------------------------------------------------------------------------

    def search_many(
        self, *, community_id: int, queries: Sequence[str], kinds: Sequence[MatchKind], top_k: int = 5,
        threshold: float | None = None, upcoming_only: bool = True, languages: Sequence[str] | None = None,
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
        readable = frozenset(languages) if languages else None
        for kind in kinds:
            if sizes[kind]:
                found = self._candidates(community_id, kind, texts, qvecs, top_k, sizes[kind],
                                         _Filter(upcoming_only, now, readable))
                for bucket, cands in zip(per_query, found, strict=True):
                    bucket.extend(cands)
        limit = self._default_threshold if threshold is None else threshold
        ranked = [_dedupe(sorted(c, key=_order))[:top_k] for c in per_query]
        whys = self._explain(texts, qvecs, ranked)
        for slot, cands, reasons in zip(active, ranked, whys, strict=True):
            results[slot] = [
                Match(kind=c.document.kind, id=c.document.id, title=c.document.title, score=c.score,
                      why=why, below_threshold=c.score < limit, url=c.document.url, detail=c.document.detail,
                      cosine=c.cosine)
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

    def _candidates(
        self, community_id: int, kind: MatchKind, texts: Sequence[str], qvecs: np.ndarray, top_k: int,
        size: int, keep: _Filter,
    ) -> list[list[_Candidate]]:
        """Filtered, scored candidates of one kind for each query, fetching deeper while filters starve them.

        Candidates are the union of the dense and the lexical top ``k``; each gets the score of the side
        that did not propose it too (the stored vector's cosine, the document's BM25 coverage). They are
        ranked by fused score before any row is read, and rows are read best first, a few at a time, until
        enough pass the filters: most searches read about ``2 * top_k`` rows, not every candidate.
        """
        k = min(size, top_k * self._overfetch)
        out: list[list[_Candidate]] = [[] for _ in texts]
        pending = list(range(len(texts)))
        store, weight = self._store, self._lexical_weight
        while pending:
            dense = store.search(community_id=community_id, kind=kind, queries=qvecs[pending], k=k)
            still = []
            for qi, d_row in zip(pending, dense, strict=True):
                cosine = dict(d_row)
                coverage: dict[int, float] = {}
                l_row: list[tuple[int, float]] = []
                if weight > 0:
                    l_row, d_cover = store.lexical_search(community_id=community_id, kind=kind,
                                                          query=texts[qi], k=k, ids=[i for i, _ in d_row])
                    coverage = dict(l_row)
                    coverage.update((i, float(c)) for (i, _), c in zip(d_row, d_cover, strict=True))
                    if lacking := [i for i in coverage if i not in cosine]:
                        cosine.update(store.cosines(community_id=community_id, kind=kind, query=qvecs[qi],
                                                    ids=lacking))
                ranked = sorted(((fused_score(cosine=c, coverage=coverage.get(i, 0.0), lexical_weight=weight),
                                  i) for i, c in cosine.items()), key=lambda t: (-t[0], t[1]))
                out[qi] = self._read_best(community_id, kind, ranked, cosine, keep, want=top_k + 2)
                if len(out[qi]) < top_k and (len(d_row) >= k or len(l_row) >= k) and k < size:
                    still.append(qi)
            pending, k = still, min(size, k * 4)
        return out

    def _read_best(
        self, community_id: int, kind: MatchKind, ranked: Sequence[tuple[float, int]],
        cosine: dict[int, float], keep: _Filter, *, want: int,
    ) -> list[_Candidate]:
        """Read the ranked ids' rows best first, ``want`` at a time, until ``want`` pass the filters."""
        found: list[_Candidate] = []
        for start in range(0, len(ranked), want):
            chunk = ranked[start:start + want]
            docs = self._load(community_id, kind, {i for _, i in chunk}, keep)
            found += [_Candidate(docs[i], cosine[i], score) for score, i in chunk if i in docs]
            if len(found) >= want:
                break
        return found

    def _load(self, community_id: int, kind: MatchKind, ids: set[int], keep: _Filter) -> dict[int, Document]:
        """Re-read the hit rows as documents, dropping rows deleted, withdrawn or past since indexing and
        rows the filter refuses."""
        if not ids:
            return {}
        table: Any = TABLES[kind]
        with session_scope(self._engine) as session:
            rows = session.exec(
                select(table).where(col(table.id).in_(sorted(ids)), col(table.community_id) == community_id)
            ).all()
            return {r.id: to_document(r) for r in rows if is_indexable(r) and keep.accepts(r)}

    def _fields_embedded(self, texts: list[str]) -> np.ndarray:
        """Passage embeddings of ``texts`` (n, dim), from an LRU cache of :data:`_EXPLAIN_CACHE_SIZE` texts
        (the embedder is deterministic, so a cached vector equals a fresh one)."""
        with self._field_lock:
            known = {t: self._field_vectors[t] for t in texts if t in self._field_vectors}
            for t in known:
                self._field_vectors.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            fresh = self._embedder.embed_passages(missing)
            known.update(zip(missing, fresh, strict=True))
            with self._field_lock:
                for t, v in zip(missing, fresh, strict=True):
                    self._field_vectors[t] = v
                while len(self._field_vectors) > _EXPLAIN_CACHE_SIZE:
                    self._field_vectors.popitem(last=False)
        return np.stack([known[t] for t in texts])

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
                vecs = self._fields_embedded([f.text[:_EXPLAIN_CHARS] for _, _, f in fields])
                sims = np.einsum("ij,ij->i", vecs, qvecs[[qi for qi, _, _ in fields]])
                best: dict[tuple[int, int], float] = {}
                for (qi, ci, f), sim in zip(fields, sims, strict=True):
                    if sim > best.get((qi, ci), -2.0):
                        best[(qi, ci)], best_field[(qi, ci)] = float(sim), f.label
        return [[explain(query=texts[qi], document=c.document, best_field=best_field.get((qi, ci)))
                 for ci, c in enumerate(cands)] for qi, cands in enumerate(ranked)]


@dataclass(frozen=True, slots=True)
class _Filter:
    """The per-search filters beyond indexability: upcoming events only, readable languages."""

    upcoming_only: bool
    now: datetime
    languages: frozenset[str] | None

    def accepts(self, row: Any) -> bool:
        if self.upcoming_only and isinstance(row, Event) and (row.ends_at or row.starts_at) < self.now:
            return False
        if self.languages is None:
            return True
        if isinstance(row, Member):
            stated = language_codes(row.languages)
            return not stated or bool(stated & self.languages)
        stated_one = language_code(getattr(row, "language", "") or "")
        main = stated_one or dominant_language(f"{row.title} {row.description}")
        return main is None or main in self.languages


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
