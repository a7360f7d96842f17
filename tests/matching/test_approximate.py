"""The approximate (IVF) index past a size: recall against exact, edits, persistence, switching back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from bot.db import session_scope
from bot.models import Resource
from matching.embedder import HashingEmbedder
from matching.index import IndexStore, VectorIndex


def _clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres, like text embeddings (which cluster by topic)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    x = c[rng.integers(0, centres, size=n)] + 0.35 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_recall_at_10_against_exact_search_is_high() -> None:
    vecs = _clustered(5000)
    ids = np.arange(1000, 6000)
    exact = VectorIndex.build(dim=32, ids=ids, vectors=vecs, approximate=False)
    approx = VectorIndex.build(dim=32, ids=ids, vectors=vecs, approximate=True, nprobe=8)
    assert approx.approximate and not exact.approximate and approx.nlist == 71  # round(sqrt(5000))
    queries = _clustered(200, seed=1)
    truth = exact.search(queries=queries, k=10)
    got = approx.search(queries=queries, k=10)
    recall = np.mean([len({i for i, _ in g} & {i for i, _ in t}) / 10
                      for g, t in zip(got, truth, strict=True)])
    assert recall >= 0.9
    assert sorted(approx.ids().tolist()) == ids.tolist()


def test_ivf_replaces_removes_and_reconstructs_by_database_id() -> None:
    vecs = _clustered(300)
    index = VectorIndex.build(dim=32, ids=np.arange(300), vectors=vecs, approximate=True)
    assert index.remove(ids=[5, 6, 999]) == 2 and index.ntotal == 298
    index.upsert(ids=[7], vectors=vecs[100:101])
    assert index.ntotal == 298
    np.testing.assert_allclose(index.vectors([7]), vecs[100:101], atol=1e-6)
    assert index.search(queries=vecs[100:101], k=2)[0][0][1] > 0.999
    assert 5 not in {i for row in index.search(queries=vecs[:20], k=20) for i, _ in row}
    again = VectorIndex.from_bytes(index.to_bytes(), dim=32)
    assert again.approximate and sorted(again.ids().tolist()) == sorted(index.ids().tolist())
    assert again.search(queries=vecs[:3], k=5) == index.search(queries=vecs[:3], k=5)


def test_the_store_switches_to_ivf_at_the_size_and_back_below_half(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder, add: Callable[..., None],
) -> None:
    add(*[Resource(id=i, community_id=community_id, title=f"guide number {i} about topic {i % 7}")
          for i in range(1, 61)])
    store = IndexStore(engine=engine, data_dir=data_dir, embedder=embedder, approximate_from=50)
    store.sync(community_id=community_id, kinds=["resource"])
    assert store.approximate(community_id=community_id, kind="resource")
    query = embedder.embed_queries(["guide number 42 about topic 0"])
    assert store.search(community_id=community_id, kind="resource", queries=query, k=1)[0][0][0] == 42
    # a restart reads the IVF index back, not a rebuild
    restarted = IndexStore(engine=engine, data_dir=data_dir, embedder=embedder, approximate_from=50)
    restarted.sync(community_id=community_id, kinds=["resource"])
    assert restarted.approximate(community_id=community_id, kind="resource")
    assert restarted.ids(community_id=community_id, kind="resource") == list(range(1, 61))
    with session_scope(engine) as s:
        for row in s.exec(Resource.__table__.select().where(Resource.id > 20)).all():  # type: ignore[attr-defined]
            s.delete(s.get(Resource, row.id))
    restarted.sync(community_id=community_id, kinds=["resource"])
    assert not restarted.approximate(community_id=community_id, kind="resource")
    assert restarted.ids(community_id=community_id, kind="resource") == list(range(1, 21))
