"""Property test: after many random edits the indexes and the database agree exactly, across restarts."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.db import session_scope
from bot.models import Member, Resource
from matching.documents import to_document
from matching.embedder import HashingEmbedder
from matching.index import IndexStore, text_hash
from matching.lexical import LexicalIndex
from matching.search import IndexedMatcher, fused_score

WORDS = ["angel", "seed", "round", "hardware", "shenzhen", "factory", "growth", "seo", "visa", "legal",
         "pricing", "saas", "climate", "天使", "融资", "工厂", "深圳", "增长", "法律", "签证", "定价"]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


def _live(engine: Engine, community_id: int) -> dict[str, dict[int, str]]:
    """Indexable rows per kind as {id: embedded text}, read straight from the database."""
    with session_scope(engine) as s:
        members = s.exec(select(Member).where(col(Member.community_id) == community_id,
                                              col(Member.consent_suggest).is_(True))).all()
        resources = s.exec(select(Resource).where(col(Resource.community_id) == community_id)).all()
        return {"member": {m.id: to_document(m).text for m in members if m.id is not None},
                "resource": {r.id: to_document(r).text for r in resources if r.id is not None}}


def _random_edit(engine: Engine, community_id: int, rng: random.Random) -> None:
    with session_scope(engine) as s:
        kind = rng.choice((Member, Resource))
        ids = list(s.exec(select(kind.id).where(kind.community_id == community_id)).all())
        op = rng.random()
        if op < 0.45 or not ids:
            if kind is Member:
                s.add(Member(community_id=community_id, display_name=f"m{rng.randint(0, 10**6)}",
                             offers=_text(rng), consent_suggest=rng.random() < 0.8))
            else:
                s.add(Resource(community_id=community_id, title=_text(rng), description=_text(rng)))
        elif op < 0.75:
            row = s.get(kind, rng.choice(ids))
            if isinstance(row, Member):
                row.offers = _text(rng)
                if rng.random() < 0.3:
                    row.consent_suggest = not row.consent_suggest
            else:
                row.description = _text(rng)
            row.updated_at = row.updated_at.__class__.now(tz=row.updated_at.tzinfo)
            s.add(row)
        else:
            s.delete(s.get(kind, rng.choice(ids)))


def test_after_1000_random_edits_index_and_database_agree_and_restart_answers_the_same(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder,
) -> None:
    rng = random.Random(7)
    # approximate_from=20: the resource index crosses between exact and IVF during the run
    store = IndexStore(engine=engine, data_dir=data_dir, embedder=embedder, approximate_from=20)
    crossed = set()
    for step in range(1000):
        _random_edit(engine, community_id, rng)
        if step % 3 == 0 or rng.random() < 0.2:  # several edits may land between two syncs
            store.sync(community_id=community_id)
            crossed.add(store.approximate(community_id=community_id, kind="resource"))
    store.sync(community_id=community_id)
    live = _live(engine, community_id)
    for kind, rows in live.items():
        assert store.ids(community_id=community_id, kind=kind) == sorted(rows)
        want = embedder.embed_passages(list(rows.values()))
        got = np.array([store.cosines(community_id=community_id, kind=kind, query=v, ids=[i])[i]
                        for i, v in zip(rows, want, strict=True)])
        assert np.allclose(got, 1.0, atol=1e-5)  # every stored vector is the embedding of today's text
    assert crossed == {True, False}

    # a fresh process: the files on disk hold exactly the same, and searches answer the same
    matcher = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder, lexical_weight=0.2)
    restarted = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder, lexical_weight=0.2)
    queries = [_text(rng) for _ in range(15)]
    first = [[(m.kind, m.id, round(m.score, 6)) for m in r]
             for r in matcher.search_many(community_id=community_id, queries=queries,
                                          kinds=["member", "resource"], top_k=5, upcoming_only=False)]
    second = [[(m.kind, m.id, round(m.score, 6)) for m in r]
              for r in restarted.search_many(community_id=community_id, queries=queries,
                                             kinds=["member", "resource"], top_k=5, upcoming_only=False)]
    assert first == second and all(first)


def test_fused_scores_equal_a_brute_force_over_the_database(
    engine: Engine, data_dir: Path, community_id: int, embedder: HashingEmbedder,
) -> None:
    rng = random.Random(3)
    for _ in range(120):
        _random_edit(engine, community_id, rng)
    matcher = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder, lexical_weight=0.3)
    rows = _live(engine, community_id)["resource"]
    lexical = LexicalIndex()
    lexical.upsert(ids=list(rows), texts=list(rows.values()))
    vectors = embedder.embed_passages(list(rows.values()))
    for query in ["angel seed", "深圳 工厂 定价", "visa legal saas", "growth"]:
        q = embedder.embed_queries([query])[0]
        coverage = dict(zip(*lexical.scores(query)[::2], strict=True))
        brute = sorted(((fused_score(cosine=float(v @ q), coverage=float(coverage[i]), lexical_weight=0.3), i)
                        for i, v in zip(rows, vectors, strict=True)), key=lambda t: (-t[0], t[1]))
        found = matcher.search(community_id=community_id, query=query, kinds=["resource"], top_k=5)
        assert [m.score for m in found] == pytest.approx([s for s, _ in brute[:len(found)]], abs=1e-5)
        assert len(found) == min(5, len(rows))
    assert len(text_hash("x")) == 16
