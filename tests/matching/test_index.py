"""VectorIndex and IndexStore: ids are database ids, empty/small indexes, persistence, stamps, sync."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import faiss
import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.db import session_scope
from bot.models import Member, Resource, utcnow
from matching.embedder import HashingEmbedder
from matching.index import IndexStamp, IndexStore, VectorIndex


def _unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_empty_index_returns_nothing_for_one_and_many_queries() -> None:
    index = VectorIndex(dim=8)
    rng = np.random.default_rng(0)
    assert index.search(queries=_unit(rng, 1), k=5) == [[]]
    assert index.search(queries=_unit(rng, 25), k=5) == [[] for _ in range(25)]


def test_top_k_larger_than_index_returns_only_real_ids_never_minus_one() -> None:
    rng = np.random.default_rng(1)
    vecs = _unit(rng, 3)
    index = VectorIndex(dim=8)
    index.upsert(ids=[101, 102, 103], vectors=vecs)
    # raw faiss pads with label -1 when asked for more than it holds: that is what must never leak
    _, raw_labels = index._index.search(vecs[:1], 5)
    assert list(raw_labels[0]).count(-1) == 2
    hits = index.search(queries=vecs[0], k=5)[0]
    assert len(hits) == 3
    assert sorted(i for i, _ in hits) == [101, 102, 103]
    assert hits[0][0] == 101 and hits[0][1] == pytest.approx(1.0, abs=1e-6)
    assert all(-1.0 <= s <= 1.0 for _, s in hits)


def test_vectors_are_normalised_on_add_and_query() -> None:
    index = VectorIndex(dim=3)
    index.upsert(ids=[7], vectors=np.array([[3.0, 0.0, 4.0]]))
    ((i, score),) = index.search(queries=np.array([[0.0, 0.0, 10.0]]), k=1)[0]
    assert i == 7 and score == pytest.approx(0.8, abs=1e-6)


def test_upsert_replaces_and_remove_drops_by_database_id() -> None:
    index = VectorIndex(dim=2)
    index.upsert(ids=[5, 9], vectors=np.array([[1.0, 0.0], [0.0, 1.0]]))
    index.upsert(ids=[5], vectors=np.array([[0.0, 1.0]]))
    assert index.ntotal == 2
    assert sorted(index.ids().tolist()) == [5, 9]
    assert index.search(queries=np.array([1.0, 0.0]), k=2)[0][0][1] == pytest.approx(0.0, abs=1e-6)
    assert index.remove(ids=[9, 12345]) == 1
    assert index.ids().tolist() == [5]


def test_upsert_rejects_bad_ids_and_shapes() -> None:
    index = VectorIndex(dim=2)
    with pytest.raises(ValueError):
        index.upsert(ids=[1, 1], vectors=np.ones((2, 2)))
    with pytest.raises(ValueError):
        index.upsert(ids=[-1], vectors=np.ones((1, 2)))
    with pytest.raises(ValueError):
        index.upsert(ids=[1], vectors=np.ones((1, 3)))


def test_bytes_round_trip_keeps_ids_and_scores() -> None:
    rng = np.random.default_rng(2)
    vecs = _unit(rng, 4)
    index = VectorIndex(dim=8)
    index.upsert(ids=[10, 20, 30, 40], vectors=vecs)
    back = VectorIndex.from_bytes(index.to_bytes(), dim=8)
    assert back.search(queries=vecs, k=4) == index.search(queries=vecs, k=4)


def test_garbage_bytes_raise_value_error_not_a_native_crash() -> None:
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(b"not a faiss index at all", dim=8)
    with pytest.raises(ValueError):  # a valid index of another kind / dimension
        VectorIndex.from_bytes(faiss.serialize_index(faiss.IndexFlatIP(8)).tobytes(), dim=8)
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(VectorIndex(dim=4).to_bytes(), dim=8)


# --- IndexStore -------------------------------------------------------------------------------------------


def _store(engine: Engine, data_dir: Path, embedder: HashingEmbedder) -> IndexStore:
    return IndexStore(engine=engine, data_dir=data_dir, embedder=embedder)


def test_files_are_written_under_data_dir_without_leftovers(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, add: Callable[..., None],
) -> None:
    add(Resource(id=3, community_id=community_id, title="Pitch deck guide"))
    store = _store(engine, data_dir, embedder)
    store.sync(community_id=community_id, kinds=["resource"])
    folder = data_dir / "index" / str(community_id)
    assert sorted(p.name for p in folder.iterdir()) == ["resource.faiss", "resource.json",
                                                        "resource.lexical.json"]
    stamp = IndexStamp.from_json((folder / "resource.json").read_text())
    assert (stamp.model_id, stamp.dim, sorted(stamp.hashes)) == ("hashing-bow:256", 256, [3])
    assert stamp.fingerprint.count == 1 and stamp.fingerprint.sum_id == 3


def test_unchanged_database_costs_no_embedding(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, add: Callable[..., None],
    recorded: list[str],
) -> None:
    add(Resource(id=3, community_id=community_id, title="Pitch deck guide"))
    store = _store(engine, data_dir, embedder)
    store.sync(community_id=community_id)
    recorded.clear()
    store.sync(community_id=community_id)
    assert recorded == []


def test_unchanged_counter_skips_the_table_scan_and_any_write_is_seen(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, add: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add(Resource(id=3, community_id=community_id, title="Pitch deck guide"))
    store = _store(engine, data_dir, embedder)
    store.sync(community_id=community_id, kinds=["resource"])
    scans: list[int] = []
    real = store._fingerprint
    monkeypatch.setattr(store, "_fingerprint", lambda cid, kind: scans.append(cid) or real(cid, kind))
    for _ in range(3):
        store.sync(community_id=community_id, kinds=["resource"])
    assert scans == []  # the trigger-kept counter did not move: one primary-key lookup per sync
    with engine.begin() as conn:  # a write from elsewhere, without touching updated_at
        conn.execute(sa.text("DELETE FROM resource WHERE id = 3"))
    store.sync(community_id=community_id, kinds=["resource"])
    assert scans == [community_id] and store.ids(community_id=community_id, kind="resource") == []
    # a restarted process trusts the saved stamp's counter too
    fresh = _store(engine, data_dir, embedder)
    monkeypatch.setattr(fresh, "_fingerprint", lambda cid, kind: scans.append(cid) or real(cid, kind))
    fresh.sync(community_id=community_id, kinds=["resource"])
    assert scans == [community_id]


def test_sync_reembeds_only_rows_whose_text_changed(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, add: Callable[..., None],
    recorded: list[str],
) -> None:
    add(*[Resource(id=i, community_id=community_id, title=f"Guide {i}") for i in (1, 2, 3)])
    store = _store(engine, data_dir, embedder)
    store.sync(community_id=community_id, kinds=["resource"])
    recorded.clear()
    with session_scope(engine) as s:
        r2 = s.get(Resource, 2)
        assert r2 is not None
        r2.description, r2.updated_at = "Term sheets explained", utcnow() + timedelta(seconds=1)
        r3 = s.get(Resource, 3)
        assert r3 is not None
        r3.updated_at = utcnow() + timedelta(seconds=1)  # touched, text unchanged
        s.add(Resource(id=4, community_id=community_id, title="Guide 4"))
    store.sync(community_id=community_id, kinds=["resource"])
    assert sorted(recorded) == ["Guide 2\nTerm sheets explained", "Guide 4"]
    assert store.ids(community_id=community_id, kind="resource") == [1, 2, 3, 4]
    q = embedder.embed_queries(["term sheets explained"])
    assert store.search(community_id=community_id, kind="resource", queries=q, k=1)[0][0][0] == 2


def test_consent_withdrawn_without_updated_at_is_still_seen(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, add: Callable[..., None],
) -> None:
    add(Member(id=1, community_id=community_id, display_name="Ann", offers="design"),
        Member(id=2, community_id=community_id, display_name="Bo", offers="design"))
    store = _store(engine, data_dir, embedder)
    store.sync(community_id=community_id, kinds=["member"])
    assert store.ids(community_id=community_id, kind="member") == [1, 2]
    with session_scope(engine) as s:
        m = s.get(Member, 2)
        assert m is not None
        m.consent_suggest = False  # updated_at deliberately not touched
    store.sync(community_id=community_id, kinds=["member"])
    assert store.ids(community_id=community_id, kind="member") == [1]
    with session_scope(engine) as s:
        m = s.get(Member, 2)
        assert m is not None
        m.consent_suggest = True
    store.sync(community_id=community_id, kinds=["member"])
    assert store.ids(community_id=community_id, kind="member") == [1, 2]


@pytest.mark.parametrize("other", [HashingEmbedder(dim=128), type("Renamed", (HashingEmbedder,), {
    "model_id": property(lambda self: "another-model")})()])
def test_stamp_from_another_model_or_dim_is_rebuilt_with_a_clear_log(
    engine: Engine, data_dir: Path, community_id: int, caplog: pytest.LogCaptureFixture,
    other: HashingEmbedder, add: Callable[..., None],
) -> None:
    add(Resource(id=8, community_id=community_id, title="Cap table template"))
    _store(engine, data_dir, HashingEmbedder(dim=256)).sync(community_id=community_id)
    caplog.set_level(logging.WARNING, logger="matching.index")
    store = _store(engine, data_dir, other)
    store.sync(community_id=community_id, kinds=["resource"])
    expected = ("was built with model 'hashing-bow:256' (dim 256) but the current embedder is "
                f"'{other.model_id}' (dim {other.dim}); rebuilding it from the database")
    assert any(expected in r.getMessage() for r in caplog.records)
    q = other.embed_queries(["Cap table template"])
    hits = store.search(community_id=community_id, kind="resource", queries=q, k=5)[0]
    assert [i for i, _ in hits] == [8] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    stamp = IndexStamp.from_json(store.path_for(community_id=community_id, kind="resource")
                                 .with_suffix(".json").read_text())
    assert (stamp.model_id, stamp.dim) == (other.model_id, other.dim)


def test_corrupt_or_inconsistent_files_are_rebuilt(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder,
    caplog: pytest.LogCaptureFixture, add: Callable[..., None],
) -> None:
    add(Resource(id=8, community_id=community_id, title="Cap table template"))
    store = _store(engine, data_dir, embedder)
    store.sync(community_id=community_id, kinds=["resource"])
    path = store.path_for(community_id=community_id, kind="resource")
    path.write_bytes(b"\x00garbage")
    caplog.set_level(logging.WARNING, logger="matching.index")
    fresh = _store(engine, data_dir, embedder)
    fresh.sync(community_id=community_id, kinds=["resource"])
    assert "cannot be read" in caplog.text
    assert fresh.ids(community_id=community_id, kind="resource") == [8]
    # a stamp listing other ids than the file holds (e.g. a crash between the two writes)
    stamp_path = path.with_suffix(".json")
    stamp = IndexStamp.from_json(stamp_path.read_text())
    stamp.hashes[99] = "0" * 16
    stamp_path.write_text(stamp.to_json())
    caplog.clear()
    again = _store(engine, data_dir, embedder)
    again.sync(community_id=community_id, kinds=["resource"])
    assert "holds 1 vectors and 1 lexical documents but its stamp lists 2 ids" in caplog.text
    assert again.ids(community_id=community_id, kind="resource") == [8]


@pytest.mark.sqlite_only  # "another database" is a copy of the SQLite file
def test_index_from_another_database_is_rebuilt(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, add: Callable[..., None],
) -> None:
    import shutil

    from bot.db import create_db_engine

    add(Resource(id=1, community_id=community_id, title="Alpha"))
    _store(engine, data_dir, embedder).sync(community_id=community_id, kinds=["resource"])
    engine.dispose()
    assert engine.url.database is not None
    shutil.copyfile(engine.url.database, tmp_path / "other.sqlite3")
    other = create_db_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    with session_scope(other) as s:
        row = s.exec(select(Resource)).one()
        row.title = "Beta"  # same id, same updated_at, other text
    caplog.set_level(logging.WARNING, logger="matching.index")
    store = _store(other, data_dir, embedder)
    store.sync(community_id=community_id, kinds=["resource"])
    assert "built from another database" in caplog.text
    hits = store.search(community_id=community_id, kind="resource", queries=embedder.embed_queries(["Beta"]),
                        k=1)[0]
    assert hits[0][0] == 1 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    other.dispose()


def test_unknown_kind_is_refused(engine: Engine, data_dir: Path, embedder: HashingEmbedder) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        _store(engine, data_dir, embedder).sync(community_id=1, kinds=["company"])  # type: ignore[list-item]
