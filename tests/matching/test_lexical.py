"""The lexical side: bilingual tokenisation and the BM25 index keyed by database ids."""

from __future__ import annotations

import numpy as np
import pytest

from matching.lexical import BM25_K1, LexicalIndex, tokenize


@pytest.mark.parametrize(("text", "tokens"), [
    ("Anyone know about angel investors?", ["angel", "invest"]),
    ("Who has shipped hardware with a Node.js or C++ firmware?", ["shipp", "hardware", "node.js", "c++",
                                                                  "firmware"]),
    ("有人懂天使轮融资吗？", ["天使", "融资"]),
    ("谁能帮我找深圳的工厂", ["深圳", "工厂"]),
    ("有人懂 seed round 吗", ["seed", "round"]),
    ("ＳＥＥＤ　Ｒｏｕｎｄ", ["seed", "round"]),  # full-width forms are NFKC-folded
    ("？！…", []),
])
def test_tokenize_keeps_topic_words_in_both_languages(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def _index() -> LexicalIndex:
    ix = LexicalIndex()
    ix.upsert(ids=[5, 7, 9, 11], texts=["Angel investor, writes seed cheques", "天使轮融资经验丰富",
                                        "Hardware factory in Shenzhen 深圳工厂", "Growth marketing and SEO"])
    return ix


def test_bm25_ranks_the_documents_sharing_rare_words_first_in_either_language() -> None:
    ix = _index()
    assert [i for i, _ in ix.top("angel investors for my seed round", k=3)] == [5]
    assert [i for i, _ in ix.top("深圳哪里有工厂", k=3)] == [9]
    assert [i for i, _ in ix.top("天使轮怎么融资", k=3)] == [7]
    assert ix.top("cooking classes", k=3) == [] and ix.top("", k=3) == []


def test_coverage_is_the_share_of_the_query_weight_a_document_covers() -> None:
    ix = _index()
    ids, bm25, coverage = ix.scores("angel seed", ids=[5, 11, 404])
    assert ids.tolist() == [5, 11, 404] and bm25[1] == bm25[2] == 0.0
    # both terms once in a document of near-average length: close to the reference score, so close to 1
    assert 0.8 < coverage[0] <= 1.0
    half = ix.scores("angel zzzunknownword", ids=[5])[2][0]  # an unknown word weighs its df=0 idf
    assert 0.0 < half < coverage[0] * 0.6
    # coverage = bm25 * (1 + k1) / sum(idf); idf = ln(1 + (N - df + .5) / (df + .5)), N=4, df=1
    idf = np.log(1 + 3.5 / 1.5)
    assert coverage[0] == pytest.approx(min(1.0, bm25[0] * (1 + BM25_K1) / (2 * idf)), rel=1e-5)


def test_updates_and_removals_take_effect_on_the_next_search() -> None:
    ix = _index()
    assert ix.top("growth", k=2)[0][0] == 11
    ix.upsert(ids=[11], texts=["Pricing strategy for B2B SaaS"])
    ix.remove(ids=[9, 12345])
    assert ix.top("growth", k=2) == [] and ix.top("pricing", k=2)[0][0] == 11
    assert ix.ids() == [5, 7, 11] and len(ix) == 3
    assert ix.top("深圳", k=2) == []


def test_empty_index_and_bad_arguments() -> None:
    ix = LexicalIndex()
    assert ix.top("anything at all", k=5) == []
    ids, bm25, coverage = ix.scores("angel", ids=[1, 2])
    assert ids.tolist() == [1, 2] and bm25.tolist() == coverage.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="exactly one of"):
        ix.upsert(ids=[1])
    with pytest.raises(ValueError, match="2 documents for 1 ids"):
        ix.upsert(ids=[1], texts=["a b", "c d"])
