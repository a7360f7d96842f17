"""FAISS indexes whose ids are database ids, one per (community, kind), kept in step with the database.

Layout under the data directory::

    <data_dir>/index/<community_id>/<kind>.faiss          FAISS index: exact (IndexIDMap2 over IndexFlatIP)
                                                          or, from ``approximate_from`` vectors, IVF
    <data_dir>/index/<community_id>/<kind>.lexical.json   the BM25 tokens of every document
    <data_dir>/index/<community_id>/<kind>.json           stamp: model_id, dim, database fingerprint, hashes

Each (community, kind) has a dense index (:class:`VectorIndex`) and a lexical one
(:class:`matching.lexical.LexicalIndex`) over the same documents, changed together.

Vectors are L2-normalised when added and when searched, so scores are cosines in [-1, 1]. The database is
the single source of truth: :meth:`IndexStore.sync` first reads the (community, kind) change counter that
database triggers bump on every write (``match_version``, migration 0003; a primary-key lookup) and stops
there when the stamp has seen it. Otherwise it compares a fingerprint of the table (one aggregate query:
row count, ``max(updated_at)``, ``sum(id)`` and the same over the indexable rows) with the stamp and, when
it differs, catches up incrementally (re-embeds rows whose ``updated_at`` is at or after the
stamp's, minus a safety margin, and whose text changed; adds missing rows; removes rows gone from the
database or no longer indexable). A stamp from another model, dimension or database, an unreadable file or
a file that disagrees with its stamp is logged and rebuilt from the database, never trusted.

Writers must set ``updated_at`` when they change a row's text (the fingerprint is how changes are seen);
inserts, deletes, consent and cancellation changes are seen even without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.db import session_scope
from bot.messages import MatchKind
from bot.models import MatchVersion, utcnow
from matching.documents import KINDS, TABLES, Document, indexable_clause, to_document
from matching.embedder import TextEmbedder, l2_normalise
from matching.lexical import LexicalIndex

log = logging.getLogger(__name__)

#: Version of the on-disk layout; another value in a stamp means "rebuild".
FORMAT_VERSION = 2
#: Rows embedded per call during a rebuild (bounds memory; the embedder batches further).
_EMBED_CHUNK = 2048
#: Show a progress bar when embedding at least this many passages.
_PROGRESS_FROM = 500
_IN_CHUNK = 500
#: Indexes of at least this many vectors are approximate (IVF); see ``bench/reports/matching.md`` for the
#: recall and latency at 1k, 10k and 100k items.
DEFAULT_APPROXIMATE_FROM = 20_000
#: Inverted lists an approximate index visits per query: 64 of the 316 lists of 100k e5 vectors found 95-96 %
#: of the exact top 10 (16: 76-85 %, 128: 99-100 % at twice the time; ``bench/reports/matching.md``).
DEFAULT_NPROBE = 64
_MIN_POINTS_PER_LIST = 39
_HASHTABLE = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]  # (missing from faiss's stubs)


class VectorIndex:
    """A FAISS inner-product index keyed by int64 database ids: exact, or approximate past a size.

    Exact: ``IndexIDMap2(IndexFlatIP)`` (every vector compared). Approximate: ``IndexIVFFlat`` (Jégou et al.,
    2011, "Product Quantization for Nearest Neighbor Search": vectors bucketed by k-means into ``nlist``
    inverted lists; a search visits the ``nprobe`` lists nearest the query) with a hash-table direct map, so
    that ids can still be removed, replaced and reconstructed one by one. IVF rather than HNSW because HNSW
    cannot remove vectors, and a community's rows are edited and deleted all the time.

    Not thread-safe by itself; :class:`IndexStore` guards each instance with a lock.

    Args:
        dim: vector length.
        faiss_index: an existing ``IndexIDMap2`` or ``IndexIVFFlat`` to wrap (used when loading); a new empty
            exact index if ``None``.
        nprobe: inverted lists visited per query (approximate indexes only).

    Raises:
        ValueError: ``faiss_index`` is neither kind, or not of dimension ``dim``.
    """

    def __init__(self, *, dim: int, faiss_index: Any = None, nprobe: int = DEFAULT_NPROBE) -> None:
        if faiss_index is None:
            faiss_index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if not isinstance(faiss_index, faiss.IndexIDMap2 | faiss.IndexIVFFlat) or faiss_index.d != dim:
            raise ValueError(f"expected a faiss IndexIDMap2 or IndexIVFFlat of dimension {dim}, got "
                             f"{type(faiss_index).__name__} of dimension {getattr(faiss_index, 'd', '?')}")
        if isinstance(faiss_index, faiss.IndexIVFFlat):
            if faiss_index.direct_map.type != _HASHTABLE:
                faiss_index.set_direct_map_type(_HASHTABLE)
            faiss_index.nprobe = max(1, min(int(nprobe), faiss_index.nlist))
        self._index: Any = faiss_index
        self.dim = dim

    @classmethod
    def build(cls, *, dim: int, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, approximate: bool,
              nprobe: int = DEFAULT_NPROBE, seed: int = 1234) -> VectorIndex:
        """A new index holding ``vectors`` (``(len(ids), dim)``) under ``ids``; exact or approximate.

        An approximate index gets ``nlist = round(sqrt(n))`` lists (FAISS's guideline is 4-16 sqrt(n); fewer,
        larger lists keep recall high at small ``nprobe``), but at least 39 vectors per list (below that
        FAISS's k-means warns), trained by k-means on the vectors themselves (at most 256 per list, FAISS's
        own sampling cap), seeded.
        """
        vecs = l2_normalise(vectors) if len(vectors) else np.zeros((0, dim), dtype=np.float32)
        if not approximate or len(vecs) < 2:
            out = cls(dim=dim)
        else:
            nlist = max(1, min(int(round(math.sqrt(len(vecs)))), len(vecs) // _MIN_POINTS_PER_LIST))
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.cp.seed = seed
            ivf.cp.max_points_per_centroid = 256
            ivf.train(vecs)
            ivf.set_direct_map_type(_HASHTABLE)
            out = cls(dim=dim, faiss_index=ivf, nprobe=nprobe)
        out.upsert(ids=ids, vectors=vecs)
        return out

    @property
    def approximate(self) -> bool:
        """True for an IVF index (searches visit ``nprobe`` of ``nlist`` lists)."""
        return isinstance(self._index, faiss.IndexIVFFlat)

    @property
    def nlist(self) -> int:
        """Inverted lists of an approximate index; 0 for an exact one."""
        return int(self._index.nlist) if self.approximate else 0

    @property
    def ntotal(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """The database ids held, ``int64`` array of shape ``(ntotal,)`` (insertion order when exact)."""
        if not self.approximate:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        lists = self._index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self._index.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored (normalised) vectors of ``ids``, shape ``(len(ids), dim)``.

        Raises:
            KeyError: an id is not held.
        """
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, i in enumerate(ids):
            try:
                out[row] = self._index.reconstruct(int(i))
            except RuntimeError as exc:  # faiss reports an unknown id as RuntimeError
                raise KeyError(int(i)) from exc
        return out

    def upsert(self, *, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (shape ``(len(ids), dim)``) under ``ids``, replacing vectors already held for them.

        Raises:
            ValueError: shapes disagree, an id is negative, or ``ids`` has duplicates.
        """
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        vecs = l2_normalise(vectors) if len(id_arr) else np.zeros((0, self.dim), dtype=np.float32)
        if vecs.shape != (len(id_arr), self.dim):
            raise ValueError(f"vectors of shape {vecs.shape} for {len(id_arr)} ids of dimension {self.dim}")
        if len(id_arr) == 0:
            return
        if (id_arr < 0).any() or len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("ids must be distinct non-negative database ids")
        self.remove(ids=id_arr)
        self._index.add_with_ids(vecs, id_arr)

    def remove(self, *, ids: Iterable[int] | np.ndarray) -> int:
        """Remove the vectors of ``ids`` (unknown ids are ignored); returns how many were removed."""
        id_arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if id_arr.size == 0 or self.ntotal == 0:
            return 0
        id_arr = np.ascontiguousarray(id_arr)  # must outlive the selector, which points into it
        return int(self._index.remove_ids(faiss.IDSelectorArray(id_arr.size, faiss.swig_ptr(id_arr))))

    def search(self, *, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """The ``k`` nearest ids of each query row, best first, as ``(database id, cosine)`` pairs.

        ``queries`` has shape ``(n, dim)`` (a 1-D vector is one query) and is L2-normalised here. Asking for
        more than :attr:`ntotal` returns only the real hits; an empty index returns ``[]`` per query. FAISS's
        ``-1`` padding ids (also what an approximate index pads with when its probed lists hold fewer than
        ``k``) are dropped, never used as positions. Cosines are clipped to [-1, 1].
        """
        q = l2_normalise(queries)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries of dimension {q.shape[1]}, index of dimension {self.dim}")
        k = min(int(k), self.ntotal)
        if k <= 0 or q.shape[0] == 0:
            return [[] for _ in range(q.shape[0])]
        scores, labels = self._index.search(q, k)
        return [
            [(int(i), float(np.clip(s, -1.0, 1.0))) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(scores, labels, strict=True)
        ]

    def to_bytes(self) -> bytes:
        """The FAISS serialisation of the index."""
        return bytes(faiss.serialize_index(self._index).tobytes())

    @classmethod
    def from_bytes(cls, data: bytes, *, dim: int, nprobe: int = DEFAULT_NPROBE) -> VectorIndex:
        """Load an index written by :meth:`to_bytes`.

        Raises:
            ValueError: the bytes are not a FAISS ``IndexIDMap2``/``IndexIVFFlat`` of dimension ``dim``.
        """
        try:
            raw = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:  # faiss reports corrupt input as RuntimeError
            raise ValueError(f"not a FAISS index: {exc}") from exc
        return cls(dim=dim, faiss_index=raw, nprobe=nprobe)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A cheap summary of one kind's rows in one community (one aggregate query).

    Attributes:
        count: rows of the community in the table.
        max_updated_at: ISO time of the latest ``updated_at`` (UTC), ``None`` for no rows.
        sum_id: sum of their ids.
        indexable_count: rows meeting :func:`matching.documents.indexable_clause` (consent, not cancelled).
        indexable_sum_id: sum of those rows' ids.
    """

    count: int = 0
    max_updated_at: str | None = None
    sum_id: int = 0
    indexable_count: int = 0
    indexable_sum_id: int = 0


@dataclass(slots=True)
class IndexStamp:
    """What an index file was built from; stored as JSON next to it.

    Attributes:
        model_id: the embedder's ``model_id``.
        dim: vector length.
        database: a hash of the database URL (password left out): another database means rebuild.
        fingerprint: the database :class:`Fingerprint` the index is in step with.
        db_version: the ``match_version`` counter the index is in step with (-1: unknown).
        hashes: ``{database id: sha1 of the embedded text (16 hex)}`` for every vector held.
        version: :data:`FORMAT_VERSION`.
        built_at: ISO UTC time of the last write.
    """

    model_id: str
    dim: int
    database: str
    fingerprint: Fingerprint = field(default_factory=Fingerprint)
    db_version: int = -1
    hashes: dict[int, str] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    built_at: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["hashes"] = {str(k): v for k, v in sorted(self.hashes.items())}
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> IndexStamp:
        """Parse a stamp. Raises ``ValueError``/``KeyError``/``TypeError`` on a malformed one."""
        data = json.loads(text)
        return cls(
            model_id=str(data["model_id"]), dim=int(data["dim"]), database=str(data["database"]),
            fingerprint=Fingerprint(**data["fingerprint"]), db_version=int(data.get("db_version", -1)),
            hashes={int(k): str(v) for k, v in data.get("hashes", {}).items()},
            version=int(data.get("version", 0)), built_at=str(data.get("built_at", "")),
        )


def text_hash(text: str) -> str:
    """16 hex digits of the SHA-1 of an embedded text (detects edits that need re-embedding)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def database_identity(engine: Engine) -> str:
    """A stable hash of the engine's URL without its password (which database an index belongs to)."""
    return hashlib.sha1(engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]


@dataclass(slots=True)
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    index: VectorIndex | None = None
    lexical: LexicalIndex | None = None
    stamp: IndexStamp | None = None
    loaded: bool = False  # the disk copy was tried once


class IndexStore:
    """Every FAISS index of a deployment: loads, saves, syncs with the database and searches them.

    Args:
        engine: the database engine (SQLite or PostgreSQL).
        data_dir: the data directory; indexes live under ``<data_dir>/index``.
        embedder: embeds passages (its ``model_id``/``dim`` are stamped on every index).
        resync_margin: rows whose ``updated_at`` is within this margin before the stamp's latest are
            re-checked too (covers clocks of several writers and long transactions); only rows whose
            text hash changed are re-embedded.
        approximate_from: an index with at least this many vectors is approximate (IVF); one that shrinks
            below half of it becomes exact again. The switch reuses the stored vectors (no re-embedding).
        nprobe: inverted lists an approximate index visits per query.

    Thread-safe: each (community, kind) index has its own lock.
    """

    def __init__(
        self, *, engine: Engine, data_dir: Path | str, embedder: TextEmbedder,
        resync_margin: timedelta = timedelta(minutes=10),
        approximate_from: int = DEFAULT_APPROXIMATE_FROM, nprobe: int = DEFAULT_NPROBE,
    ) -> None:
        self._engine = engine
        self._root = Path(data_dir) / "index"
        self._embedder = embedder
        self._margin = resync_margin
        self._approximate_from = max(1, int(approximate_from))
        self._nprobe = int(nprobe)
        self._database = database_identity(engine)
        self._slots: dict[tuple[int, MatchKind], _Slot] = {}
        self._slots_lock = threading.Lock()

    @property
    def embedder(self) -> TextEmbedder:
        return self._embedder

    def path_for(self, *, community_id: int, kind: MatchKind) -> Path:
        """``<data_dir>/index/<community_id>/<kind>.faiss`` (the stamp is the same path with ``.json``)."""
        return self._root / str(int(community_id)) / f"{kind}.faiss"

    # --- public operations ------------------------------------------------------------------------------

    def sync(self, *, community_id: int, kinds: Sequence[MatchKind] = KINDS) -> None:
        """Bring the indexes of ``kinds`` in ``community_id`` in step with the database.

        Costs one query for the trigger-kept change counters of all ``kinds`` when nothing changed, the
        aggregate fingerprint query of a kind when it did. Loads the disk copy on first use.
        """
        kinds = list(dict.fromkeys(kinds))
        versions = self._db_versions(community_id, kinds)  # read first: a write after it shows next time
        for kind in kinds:
            slot = self._slot(community_id, kind)
            with slot.lock:
                self._sync_locked(slot, community_id, kind, versions[kind])

    def rebuild(self, *, community_id: int, kinds: Sequence[MatchKind] = KINDS) -> dict[MatchKind, int]:
        """Rebuild the indexes of ``kinds`` from the database, ignoring what is on disk.

        Returns:
            the number of vectors in each rebuilt index.
        """
        sizes: dict[MatchKind, int] = {}
        for kind in dict.fromkeys(kinds):
            slot = self._slot(community_id, kind)
            with slot.lock:
                slot.loaded = True
                version = self._db_version(community_id, kind)
                self._rebuild_locked(slot, community_id, kind, self._fingerprint(community_id, kind), version)
                sizes[kind] = slot.index.ntotal if slot.index else 0
        return sizes

    def search(
        self, *, community_id: int, kind: MatchKind, queries: np.ndarray, k: int,
    ) -> list[list[tuple[int, float]]]:
        """Nearest ``(database id, cosine)`` pairs per query row, best first, from the index as it is now.

        Does not sync (call :meth:`sync` first). ``queries`` has shape ``(n, dim)``. An index never built
        behaves as empty.
        """
        slot = self._slot(community_id, kind)
        with slot.lock:
            if slot.index is None:
                return [[] for _ in range(np.atleast_2d(queries).shape[0])]
            return slot.index.search(queries=queries, k=k)

    def lexical_search(self, *, community_id: int, kind: MatchKind, query: str | Sequence[str], k: int,
                       ids: Sequence[int] = ()) -> tuple[list[tuple[int, float]], np.ndarray]:
        """The ``k`` best ``(database id, BM25 coverage)`` pairs for ``query`` (coverage > 0, best first)
        and the coverage of ``ids``, from one scoring pass (:meth:`matching.lexical.LexicalIndex.search`).
        Does not sync."""
        slot = self._slot(community_id, kind)
        with slot.lock:
            if slot.lexical is None:
                return [], np.zeros(len(ids), dtype=np.float32)
            return slot.lexical.search(query, k=k, ids=ids)

    def cosines(self, *, community_id: int, kind: MatchKind, query: np.ndarray,
                ids: Sequence[int]) -> dict[int, float]:
        """Cosine of the query vector ``query`` (``(dim,)``) with the stored vector of each held id."""
        slot = self._slot(community_id, kind)
        with slot.lock:
            if slot.index is None:
                return {}
            held = [int(i) for i in ids if int(i) in (slot.stamp.hashes if slot.stamp else {})]
            if not held:
                return {}
            vecs = slot.index.vectors(held)
        q = l2_normalise(np.atleast_2d(query))[0]
        return {i: float(np.clip(v, -1.0, 1.0)) for i, v in zip(held, vecs @ q, strict=True)}

    def approximate(self, *, community_id: int, kind: MatchKind) -> bool:
        """Whether the in-memory index of ``(community_id, kind)`` is approximate (IVF)."""
        slot = self._slot(community_id, kind)
        with slot.lock:
            return bool(slot.index is not None and slot.index.approximate)

    def size(self, *, community_id: int, kind: MatchKind) -> int:
        """Vectors in the in-memory index of ``(community_id, kind)`` (0 if never synced)."""
        slot = self._slot(community_id, kind)
        with slot.lock:
            return slot.index.ntotal if slot.index else 0

    def ids(self, *, community_id: int, kind: MatchKind) -> list[int]:
        """Sorted database ids held by the in-memory index of ``(community_id, kind)``."""
        slot = self._slot(community_id, kind)
        with slot.lock:
            return sorted(int(i) for i in slot.index.ids()) if slot.index else []

    def forget(self) -> None:
        """Drop every in-memory index (the next use reloads from disk); for tests and reloads."""
        with self._slots_lock:
            self._slots.clear()

    # --- internals --------------------------------------------------------------------------------------

    def _slot(self, community_id: int, kind: MatchKind) -> _Slot:
        if kind not in TABLES:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        key = (int(community_id), kind)
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            return slot

    def _sync_locked(self, slot: _Slot, community_id: int, kind: MatchKind, version: int) -> None:
        if not slot.loaded:
            slot.loaded = True
            self._load_locked(slot, community_id, kind)
        if slot.index is not None and slot.stamp is not None and slot.stamp.db_version == version >= 0:
            return
        fp = self._fingerprint(community_id, kind)
        if slot.index is not None and slot.stamp is not None and slot.stamp.fingerprint == fp:
            slot.stamp.db_version = version
            self._save(slot, community_id, kind)
            return
        if slot.index is None or slot.stamp is None:
            self._rebuild_locked(slot, community_id, kind, fp, version)
        else:
            self._catch_up_locked(slot, community_id, kind, fp, version)

    def _db_version(self, community_id: int, kind: MatchKind) -> int:
        """The trigger-kept change counter of ``(community_id, kind)``: 0 before any write."""
        return self._db_versions(community_id, [kind])[kind]

    def _db_versions(self, community_id: int, kinds: Sequence[MatchKind]) -> dict[MatchKind, int]:
        """The change counters of ``kinds`` in ``community_id`` (0 before any write), in one query."""
        stmt = sa.select(col(MatchVersion.kind), col(MatchVersion.version)).where(
            col(MatchVersion.community_id) == community_id, col(MatchVersion.kind).in_(list(kinds)))
        with self._engine.connect() as conn:
            found = {str(kind): int(version) for kind, version in conn.execute(stmt).all()}
        return {kind: found.get(kind, 0) for kind in kinds}

    def _fingerprint(self, community_id: int, kind: MatchKind) -> Fingerprint:
        table: Any = TABLES[kind]
        ok = indexable_clause(kind)
        stmt = sa.select(
            sa.func.count(),
            sa.func.max(col(table.updated_at)),
            sa.func.coalesce(sa.func.sum(col(table.id)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((ok, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((ok, col(table.id)), else_=0)), 0),
        ).where(col(table.community_id) == community_id)
        with self._engine.connect() as conn:
            count, max_upd, sum_id, n_ok, sum_ok = conn.execute(stmt).one()
        return Fingerprint(
            count=int(count), max_updated_at=_iso(max_upd), sum_id=int(sum_id),
            indexable_count=int(n_ok), indexable_sum_id=int(sum_ok),
        )

    def _load_locked(self, slot: _Slot, community_id: int, kind: MatchKind) -> None:
        """Load the disk copy into ``slot`` if it is usable; otherwise log why and leave the slot empty."""
        path = self.path_for(community_id=community_id, kind=kind)
        stamp_path = path.with_suffix(".json")
        if not path.exists() and not stamp_path.exists():
            return
        where = f"index {path}"
        try:
            stamp = IndexStamp.from_json(stamp_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: its stamp %s is missing or unreadable (%s); rebuilding it from the database.",
                        where, stamp_path, exc)
            return
        dim, model_id = self._embedder.dim, self._embedder.model_id
        if stamp.version != FORMAT_VERSION:
            log.warning("%s: written in format %s, this version reads %s; rebuilding it from the database.",
                        where, stamp.version, FORMAT_VERSION)
            return
        if stamp.model_id != model_id or stamp.dim != dim:
            log.warning(
                "%s was built with model %r (dim %d) but the current embedder is %r (dim %d); "
                "rebuilding it from the database.", where, stamp.model_id, stamp.dim, model_id, dim)
            return
        if stamp.database != self._database:
            log.warning("%s was built from another database; rebuilding it from the database in use.", where)
            return
        try:
            index = VectorIndex.from_bytes(path.read_bytes(), dim=dim, nprobe=self._nprobe)
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read (%s); rebuilding it from the database.", where, exc)
            return
        try:
            lexical = _read_lexical(_lexical_path(path))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s: its BM25 file %s cannot be read (%s); rebuilding it from the database.", where,
                        _lexical_path(path), exc)
            return
        held = set(index.ids().tolist())
        if held != set(stamp.hashes) or set(lexical.ids()) != held:
            log.warning("%s holds %d vectors and %d lexical documents but its stamp lists %d ids; "
                        "rebuilding it from the database.", where, len(held), len(lexical), len(stamp.hashes))
            return
        slot.index, slot.lexical, slot.stamp = index, lexical, stamp
        log.debug("loaded %s (%d vectors)", where, index.ntotal)

    def _rebuild_locked(self, slot: _Slot, community_id: int, kind: MatchKind, fp: Fingerprint,
                        version: int) -> None:
        table: Any = TABLES[kind]
        with session_scope(self._engine) as session:
            rows = session.exec(
                select(table).where(col(table.community_id) == community_id, indexable_clause(kind))
                .order_by(col(table.id))
            ).all()
            docs = [to_document(r) for r in rows]
        if len(docs) >= _PROGRESS_FROM:
            log.info("Indexing %d %ss of community %d with %s…", len(docs), kind, community_id,
                     self._embedder.model_id)
        dim = self._embedder.dim
        vectors = np.zeros((len(docs), dim), dtype=np.float32)
        for start in range(0, len(docs), _EMBED_CHUNK):
            chunk = docs[start:start + _EMBED_CHUNK]
            vectors[start:start + len(chunk)] = self._embed(chunk, progress=len(docs) >= _PROGRESS_FROM)
        ids = [d.id for d in docs]
        slot.index = VectorIndex.build(dim=dim, ids=ids, vectors=vectors, nprobe=self._nprobe,
                                       approximate=len(docs) >= self._approximate_from)
        slot.lexical = LexicalIndex()
        slot.lexical.upsert(ids=ids, texts=[d.text for d in docs])
        hashes = {d.id: text_hash(d.text) for d in docs}
        slot.stamp = IndexStamp(model_id=self._embedder.model_id, dim=self._embedder.dim,
                                database=self._database, fingerprint=fp, db_version=version, hashes=hashes)
        self._save(slot, community_id, kind)

    def _catch_up_locked(self, slot: _Slot, community_id: int, kind: MatchKind, fp: Fingerprint,
                         version: int) -> None:
        assert slot.index is not None and slot.stamp is not None
        index, stamp = slot.index, slot.stamp
        table: Any = TABLES[kind]
        where = (col(table.community_id) == community_id, indexable_clause(kind))
        since = _parse_iso(stamp.fingerprint.max_updated_at)
        with session_scope(self._engine) as session:
            live = set(session.exec(select(col(table.id)).where(*where)).all())
            held = set(stamp.hashes)
            gone = held - live
            recent_q = select(table).where(*where)
            if since is not None:  # None: the stamp saw no rows, so every live row is new anyway
                recent_q = recent_q.where(col(table.updated_at) >= since - self._margin)
            candidates = {r.id: r for r in session.exec(recent_q).all()}
            missing = sorted(live - held - set(candidates))
            for start in range(0, len(missing), _IN_CHUNK):
                chunk = missing[start:start + _IN_CHUNK]
                extra = session.exec(select(table).where(col(table.id).in_(chunk))).all()
                candidates.update({r.id: r for r in extra})
            docs = [to_document(r) for r in candidates.values()]
        changed = [d for d in docs if stamp.hashes.get(d.id) != text_hash(d.text)]
        lexical = slot.lexical if slot.lexical is not None else LexicalIndex()
        index.remove(ids=sorted(gone))
        lexical.remove(ids=gone)
        for gid in gone:
            stamp.hashes.pop(gid, None)
        if changed:
            vectors = self._embed(changed, progress=len(changed) >= _PROGRESS_FROM)
            index.upsert(ids=[d.id for d in changed], vectors=vectors)
            lexical.upsert(ids=[d.id for d in changed], texts=[d.text for d in changed])
            stamp.hashes.update({d.id: text_hash(d.text) for d in changed})
        slot.lexical = lexical
        slot.index = index = self._reshaped(index)
        stamp.fingerprint, stamp.db_version = fp, version
        log.debug("synced %s index of community %d: %d removed, %d (re)embedded, %d held",
                  kind, community_id, len(gone), len(changed), index.ntotal)
        self._save(slot, community_id, kind)

    def _embed(self, docs: Sequence[Document], *, progress: bool) -> np.ndarray:
        """Passage vectors of ``docs``, shape ``(len(docs), dim)``; raises ``ValueError`` on a wrong shape."""
        dim = self._embedder.dim
        if not docs:
            return np.zeros((0, dim), dtype=np.float32)
        vectors = self._embedder.embed_passages([d.text for d in docs], progress=progress)
        if vectors.shape != (len(docs), dim):
            raise ValueError(f"the embedder returned shape {vectors.shape} for {len(docs)} passages of "
                             f"dimension {dim}")
        return vectors

    def _reshaped(self, index: VectorIndex) -> VectorIndex:
        """``index``, or the same vectors re-indexed when its size crossed :attr:`approximate_from`
        (exact -> IVF at it, IVF -> exact below half of it) or outgrew its IVF lists (4x the vectors the
        lists were sized for)."""
        n = index.ntotal
        want_ivf = n >= self._approximate_from or (index.approximate and n >= self._approximate_from // 2)
        outgrown = index.approximate and n > 4 * index.nlist ** 2
        if want_ivf == index.approximate and not outgrown:
            return index
        ids = index.ids()
        log.info("re-indexing %d vectors as an %s index", n, "approximate (IVF)" if want_ivf else "exact")
        return VectorIndex.build(dim=index.dim, ids=ids, vectors=index.vectors(ids), approximate=want_ivf,
                                 nprobe=self._nprobe)

    def _save(self, slot: _Slot, community_id: int, kind: MatchKind) -> None:
        """Write the index, then its stamp, each atomically; a failed write is logged, not raised."""
        assert slot.index is not None and slot.stamp is not None and slot.lexical is not None
        path = self.path_for(community_id=community_id, kind=kind)
        slot.stamp.built_at = utcnow().isoformat()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, slot.index.to_bytes())
            _atomic_write(_lexical_path(path), _lexical_json(slot.lexical))
            _atomic_write(path.with_suffix(".json"), slot.stamp.to_json().encode("utf-8"))
        except OSError as exc:
            log.warning("Could not save index %s (%s); it stays in memory and is rebuilt on the next start.",
                        path, exc)


def _lexical_path(path: Path) -> Path:
    return path.with_name(path.stem + ".lexical.json")


def _lexical_json(lexical: LexicalIndex) -> bytes:
    """``{"version": 1, "docs": {id: "token token ..."}}``: tokens never contain spaces."""
    docs = {str(i): " ".join(t) for i, t in sorted(lexical.tokens().items())}
    return json.dumps({"version": 1, "docs": docs}, ensure_ascii=False).encode("utf-8")


def _read_lexical(path: Path) -> LexicalIndex:
    """Read a file written from :func:`_lexical_json`; raises ``OSError``/``ValueError``/``KeyError``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != 1:
        raise ValueError(f"lexical file version {data.get('version')!r}")
    docs = data["docs"]
    lexical = LexicalIndex()
    lexical.upsert(ids=[int(i) for i in docs], tokens=[t.split() for t in docs.values()])
    return lexical


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and ``os.replace`` it onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # some drivers return text for aggregates
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
