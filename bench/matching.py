"""Matching benchmark: dense vs BM25 vs fused quality, the calibrated threshold, and speed at 1k-100k items.

Quality (real data, read by path from ``../shared/data``, never copied):

* STS-B dev (1,500 pairs, the same pairs in English and Chinese): Spearman of the cosine with the gold
  score for en-en, zh-zh and the cross-language pairs (en s1 with zh s2, and zh s1 with en s2, averaged).
* LCQMC dev (8,802 Chinese question pairs): accuracy at the best cosine threshold.
* Intent utterances as retrieval: a query should retrieve utterances of its own intent. CLINC150 (English):
  ``val`` in-scope utterances against ``train``; SMP2019 domain (Chinese): a fixed 20 % of ``train``
  against the other 80 %. recall@5 (the share of queries with an utterance of their intent among the
  first 5) and MRR@10, for BM25 alone, dense alone and the fused score ``cosine + w * coverage``. The
  weight ``w`` is chosen on *dev* queries held out of each corpus (10 % per intent, never the test
  queries), maximising mean MRR over both languages.
* The sample community (``data/sample``) with the hand-labelled questions of ``bench/sample_relevance.jsonl``
  (answerable ones list the items a community manager would show, unanswerable ones none): the match
  threshold is chosen on the fused score to maximise balanced accuracy over question->item pairs of the
  kinds each question searches; reported per language, with how many answerable questions get a relevant
  item shown and how many unanswerable ones are answered "no good match yet".

Speed: indexes of 1k, 10k and 100k items in a SQLite data dir, built through the product's
:class:`matching.index.IndexStore` (exact below ``approximate_from``, IVF from it). Item vectors are real
e5 passage embeddings of real sentences (CLINC150, LCQMC, STS-B, YC companies, Chinese makers), topped up
to the size with synthetic items (the mean of two real items' vectors and texts); vectors are embedded once
and cached under ``--cache``. Reported: build time (embedding excluded: it is the model's cost, reported
separately per passage), search latency p50/p99 of :meth:`matching.search.IndexedMatcher.search` with the
query vector given (dense + BM25 + fusion + database re-read), the same for the index alone, recall@10 of
the approximate index against exact search, memory, and a whole ``ask`` (classify + embed + search + reply,
through the console adapter and the shipped intent model) p50/p99 at 100k items.

Usage::

    .venv/bin/python bench/matching.py [--model multilingual-e5-small] [--sizes 1000,10000,100000]
        [--cache ~/.cache/communitybot-bench] [--out bench/reports] [--quick]

Writes ``<out>/matching.md`` and prints one JSON line of the headline figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads starve others

import argparse
import csv
import hashlib
import json
import logging
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sqlmodel import select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.intents import environment  # noqa: E402
from matching.embedder import SentenceTransformerEmbedder, TextEmbedder, l2_normalise  # noqa: E402
from matching.lexical import LexicalIndex  # noqa: E402

DATA = Path(os.environ.get("COMMUNITYBOT_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "bench" / "reports"
RELEVANCE = REPO / "bench" / "sample_relevance.jsonl"
WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8)
SEED = 42
log = logging.getLogger("bench.matching")


# --------------------------------------------------------------------------------------------- embeddings


class CachedEmbeddings:
    """Embeds texts with the real model once and keeps the vectors in ``<cache>/<sha1>.npy``."""

    def __init__(self, embedder: SentenceTransformerEmbedder, cache: Path) -> None:
        self.embedder = embedder
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def get(self, texts: Sequence[str], *, side: str) -> np.ndarray:
        """``(len(texts), dim)`` vectors of ``texts`` embedded as ``side`` ("query" or "passage")."""
        key = hashlib.sha1(json.dumps([self.embedder.model_id, side, list(texts)]).encode()).hexdigest()
        path = self.cache / f"{key}.npy"
        if path.exists():
            return np.load(path)
        t0 = time.perf_counter()
        if side == "query":
            vecs = (
                np.concatenate(
                    [self.embedder.embed_queries(texts[i : i + 256]) for i in range(0, len(texts), 256)]
                )
                if texts
                else np.zeros((0, 1))
            )
        else:
            vecs = self.embedder.embed_passages(list(texts), progress=len(texts) > 2000)
        log.info("embedded %d %s texts in %.0f s", len(texts), side, time.perf_counter() - t0)
        np.save(path, vecs.astype(np.float32))
        return vecs.astype(np.float32)


# ------------------------------------------------------------------------------------------- STS and LCQMC


def read_pairs(path: Path, *, sep: str) -> list[tuple[str, str, float]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter=sep, quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE)
        return [(r[0], r[1], float(r[2])) for r in rows if len(r) >= 3]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", l2_normalise(a), l2_normalise(b))


def sts_figures(emb: CachedEmbeddings) -> dict[str, float]:
    """Spearman x100 of cosine vs gold on STS-B dev: en, zh, cross (both directions averaged)."""
    en = read_pairs(DATA / "matching/stsb/stsb-en-dev.csv", sep=",")
    zh = read_pairs(DATA / "matching/stsb/stsb-zh-dev.csv", sep=",")
    if len(en) != len(zh):
        raise SystemExit(f"STS-B en/zh dev differ in length ({len(en)} vs {len(zh)}); they must be aligned")
    gold = np.array([s for _, _, s in en])
    # symmetric tasks: both sides as queries, as the e5 authors do for STS
    e1, e2 = emb.get([a for a, _, _ in en], side="query"), emb.get([b for _, b, _ in en], side="query")
    z1, z2 = emb.get([a for a, _, _ in zh], side="query"), emb.get([b for _, b, _ in zh], side="query")

    def rho(x: np.ndarray, y: np.ndarray) -> float:
        return float(spearmanr(cosines(x, y), gold).statistic) * 100

    return {
        "en": rho(e1, e2),
        "zh": rho(z1, z2),
        "en_zh": (rho(e1, z2) + rho(z1, e2)) / 2,
        "pairs": float(len(gold)),
    }


def lcqmc_figures(emb: CachedEmbeddings) -> dict[str, float]:
    """Accuracy (%) of "cosine >= t" on LCQMC dev at the best t, and that t."""
    rows = read_pairs(DATA / "matching/lcqmc/dev.tsv", sep="\t")
    sims = cosines(
        emb.get([a for a, _, _ in rows], side="query"), emb.get([b for _, b, _ in rows], side="query")
    )
    labels = np.array([int(y) for _, _, y in rows])
    order = np.argsort(sims)
    s, y = sims[order], labels[order]
    # threshold between s[i-1] and s[i]: the first i rows are "no"
    pos_above = np.concatenate([[y.sum()], y.sum() - np.cumsum(y)])
    neg_below = np.concatenate([[0], np.cumsum(1 - y)])
    correct = pos_above + neg_below
    best = int(np.argmax(correct))
    threshold = float(s[best - 1] + s[best]) / 2 if 0 < best < len(s) else float(s[min(best, len(s) - 1)])
    return {"accuracy": 100.0 * correct[best] / len(y), "threshold": threshold, "pairs": float(len(y))}


# ------------------------------------------------------------------------------------ intent retrieval


def read_jsonl(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return [(r["text"], r["label"]) for r in map(json.loads, fh) if r.get("text")]


def hold_out(
    rows: Sequence[tuple[str, str]],
    fraction: float,
    *,
    seed: int,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(rest, held)``: ``fraction`` of each label's rows held out (at least one where a label has 2+)."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, (_, label) in enumerate(rows):
        by[label].append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for idx in by.values():
        if len(idx) >= 2:
            held.update(rng.sample(idx, max(1, round(len(idx) * fraction))))
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


@dataclass
class RetrievalTask:
    """Queries retrieving corpus utterances of their own label."""

    name: str
    corpus: list[tuple[str, str]]
    queries: list[tuple[str, str]]


def retrieval_tasks() -> dict[str, tuple[RetrievalTask, RetrievalTask]]:
    """``{dataset: (dev task, test task)}``; dev queries come out of the corpus, never the test queries."""
    clinc = DATA / "intents/clinc150"
    train = [r for r in read_jsonl(clinc / "train.jsonl") if r[1] != "oos"]
    val = [r for r in read_jsonl(clinc / "val.jsonl") if r[1] != "oos"]
    smp_all = read_jsonl(DATA / "intents/smp2019_domain/train.jsonl")
    smp_corpus, smp_test = hold_out(smp_all, 0.2, seed=SEED)
    out = {}
    for name, corpus, test in (("clinc150", train, val), ("smp2019", smp_corpus, smp_test)):
        dev_corpus, dev_queries = hold_out(corpus, 0.1, seed=SEED + 1)
        out[name] = (RetrievalTask(f"{name}-dev", dev_corpus, dev_queries), RetrievalTask(name, corpus, test))
    return out


@dataclass
class RetrievalScores:
    """Per query: cosine and BM25 coverage against every corpus row."""

    cos: np.ndarray  # (q, n)
    cov: np.ndarray  # (q, n)
    same: np.ndarray  # (q, n) bool: same label


def score_task(task: RetrievalTask, emb: CachedEmbeddings) -> RetrievalScores:
    qv = emb.get([t for t, _ in task.queries], side="query")
    cv = emb.get([t for t, _ in task.corpus], side="passage")
    lexical = LexicalIndex()
    lexical.upsert(ids=list(range(len(task.corpus))), texts=[t for t, _ in task.corpus])
    cov = np.stack([lexical.scores(t)[2] for t, _ in task.queries])
    labels = np.array([lab for _, lab in task.corpus])
    same = labels[None, :] == np.array([lab for _, lab in task.queries])[:, None]
    return RetrievalScores(cos=l2_normalise(qv) @ l2_normalise(cv).T, cov=cov, same=same)


def rank_metrics(score: np.ndarray, same: np.ndarray, *, k: int = 5, mrr_at: int = 10) -> dict[str, float]:
    """recall@k (share of queries with a same-label row in the top k) and MRR@mrr_at, in %."""
    top = np.argsort(-score, axis=1, kind="stable")[:, :mrr_at]
    hits = np.take_along_axis(same, top, axis=1)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    rr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    return {
        f"recall@{k}": 100.0 * float(hits[:, :k].any(axis=1).mean()),
        f"mrr@{mrr_at}": 100.0 * float(rr.mean()),
    }


def retrieval_figures(
    emb: CachedEmbeddings,
    *,
    product_weight: float,
) -> tuple[float, dict[str, dict[str, dict[str, float]]], dict[str, dict[float, float]]]:
    """``(weight tuned on the dev queries, {dataset: {method: metrics}}, {dataset: {weight: dev MRR}})``;
    methods ``bm25``, ``dense``, ``fused`` (the tuned weight) and ``fused_product`` (``product_weight``)."""
    tasks = retrieval_tasks()
    dev_mrr: dict[str, dict[float, float]] = {}
    scored_test: dict[str, RetrievalScores] = {}
    for name, (dev, test) in tasks.items():
        d = score_task(dev, emb)
        dev_mrr[name] = {w: rank_metrics(d.cos + w * d.cov, d.same)["mrr@10"] for w in WEIGHTS}
        scored_test[name] = score_task(test, emb)
    weight = max(WEIGHTS, key=lambda w: (np.mean([dev_mrr[n][w] for n in dev_mrr]), -w))
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for name, s in scored_test.items():
        figures[name] = {
            "bm25": rank_metrics(s.cov + 1e-6 * s.cos, s.same),  # cosine only breaks BM25 ties
            "dense": rank_metrics(s.cos, s.same),
            "fused": rank_metrics(s.cos + weight * s.cov, s.same),
            "fused_product": rank_metrics(s.cos + product_weight * s.cov, s.same),
            "queries": {"n": float(len(s.cos)), "corpus": float(s.cos.shape[1])},
        }
    return weight, figures, dev_mrr


# --------------------------------------------------------------------------- sample community threshold


def _settings(data_dir: Path) -> Any:
    """Deployment settings with no .env, on ``data_dir`` and its SQLite file."""
    from bot.settings import Settings

    return Settings(_env_file=None, data_dir=data_dir, database_url=None)  # type: ignore[call-arg]


@dataclass
class Judged:
    """One question->item pair of the relevance set with the matcher's scores."""

    language: str
    query: int
    relevant: bool
    score: float


def sample_pairs(
    embedder: TextEmbedder, *, weight: float, work: Path
) -> tuple[list[Judged], list[dict[str, Any]]]:
    """Every question->item pair of the kinds each labelled question searches, scored by the product."""
    from bot.community import get_or_create_community
    from bot.db import create_db_engine, session_scope, upgrade_database
    from bot.models import Event, Member, Resource, utcnow
    from bot.sample import load_sample_community
    from matching.search import IndexedMatcher

    work.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(f"sqlite:///{work / 'sample.sqlite3'}")
    upgrade_database(engine)
    with session_scope(engine) as s:
        row = get_or_create_community(s, "sample", settings=_settings(work))
        load_sample_community(s, community=row, tz=UTC, now=utcnow())
        cid = int(row.id or 0)
        keys: dict[tuple[str, int], str] = {}
        for kind, table in (("member", Member), ("resource", Resource), ("event", Event)):
            for r in s.exec(select(table).where(table.community_id == cid)).all():
                keys[(kind, r.id)] = str(r.external_key).split(":")[-1]
    questions = [
        json.loads(line) for line in RELEVANCE.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    matcher = IndexedMatcher(
        engine=engine,
        data_dir=work / "sample-data",
        embedder=embedder,
        lexical_weight=weight,
        explain_with_embeddings=False,
    )
    pairs: list[Judged] = []
    for qi, q in enumerate(questions):
        found = matcher.search(
            community_id=cid,
            query=q["query"],
            kinds=q["kinds"],
            top_k=1000,
            threshold=-1.0,
            upcoming_only=False,
            languages=[q["language"]] if q["language"] in ("en", "zh") else None,  # mixed: reads both
        )
        pairs += [Judged(q["language"], qi, keys[(m.kind, m.id)] in q["relevant"], m.score) for m in found]
    engine.dispose()
    return pairs, questions


def choose_threshold(pairs: Sequence[Judged]) -> tuple[float, float]:
    """The score threshold maximising balanced accuracy over the pairs: ``(threshold, balanced accuracy)``."""
    scores = np.array([p.score for p in pairs])
    rel = np.array([p.relevant for p in pairs])
    best = (-1.0, 0.0)
    for t in np.unique(np.round(scores, 3)):
        shown = scores >= t
        bal = (shown[rel].mean() + (~shown[~rel]).mean()) / 2
        if bal > best[0] + 1e-12:
            best = (float(bal), float(t))
    return best[1], best[0]


@dataclass
class Calibration:
    """One model's sweep on the sample community: per weight, MRR of the answerable questions and the
    best threshold; the weight chosen (best MRR, ties to the lower) and its threshold."""

    model: str
    sweep: dict[float, tuple[float, float, float]]  # weight -> (MRR %, threshold, balanced accuracy %)
    weight: float
    threshold: float
    figures: dict[str, dict[str, float]]


def mrr_of(pairs: Sequence[Judged], questions: Sequence[dict[str, Any]]) -> float:
    """MRR (%) of the first relevant item over the answerable questions."""
    by: dict[int, list[Judged]] = defaultdict(list)
    for p in pairs:
        by[p.query].append(p)
    rr = []
    for i, q in enumerate(questions):
        if q["relevant"]:
            ranked = sorted(by[i], key=lambda p: -p.score)
            rank = next((k + 1 for k, p in enumerate(ranked) if p.relevant), None)
            rr.append(1.0 / rank if rank else 0.0)
    return 100.0 * float(np.mean(rr)) if rr else 0.0


def calibrate(model: str, embedder: TextEmbedder, work: Path) -> Calibration:
    """Sweep :data:`WEIGHTS` on the sample community; choose the weight by MRR, then its threshold."""
    sweep: dict[float, tuple[float, float, float]] = {}
    runs: dict[float, tuple[list[Judged], list[dict[str, Any]]]] = {}
    for w in WEIGHTS:
        pairs, questions = sample_pairs(embedder, weight=w, work=work / f"{model}-{w}")
        threshold, balanced = choose_threshold(pairs)
        sweep[w] = (mrr_of(pairs, questions), threshold, 100.0 * balanced)
        runs[w] = (pairs, questions)
    weight = max(WEIGHTS, key=lambda w: (round(sweep[w][0], 6), -w))
    pairs, questions = runs[weight]
    return Calibration(
        model, sweep, weight, sweep[weight][1], threshold_figures(pairs, questions, sweep[weight][1])
    )


def threshold_figures(
    pairs: Sequence[Judged],
    questions: Sequence[dict[str, Any]],
    threshold: float,
) -> dict[str, dict[str, float]]:
    """Per language and overall: pair recall/specificity at the threshold, answerable questions whose top
    shown item is relevant, unanswerable questions with nothing shown."""
    out: dict[str, dict[str, float]] = {}
    for lang in ("en", "zh", "mixed", "all"):
        ps = [p for p in pairs if lang in ("all", p.language)]
        qs = [i for i, q in enumerate(questions) if lang in ("all", q["language"])]
        if not ps:
            continue
        rel = np.array([p.relevant for p in ps])
        shown = np.array([p.score >= threshold for p in ps])
        by_q: dict[int, list[Judged]] = defaultdict(list)
        for p in ps:
            by_q[p.query].append(p)
        answerable = [i for i in qs if questions[i]["relevant"]]
        unanswerable = [i for i in qs if not questions[i]["relevant"]]
        top_right = sum(
            1
            for i in answerable
            if by_q[i]
            and max(by_q[i], key=lambda p: p.score).relevant
            and max(p.score for p in by_q[i]) >= threshold
        )
        silent = sum(1 for i in unanswerable if not any(p.score >= threshold for p in by_q[i]))
        out[lang] = {
            "pairs": float(len(ps)),
            "relevant_shown": 100.0 * float(shown[rel].mean()) if rel.any() else 0.0,
            "irrelevant_hidden": 100.0 * float((~shown[~rel]).mean()),
            "answerable": float(len(answerable)),
            "top_relevant": float(top_right),
            "unanswerable": float(len(unanswerable)),
            "no_match": float(silent),
        }
    return out


# ------------------------------------------------------------------------------------------------ speed


@dataclass
class SizeResult:
    """Speed figures at one index size."""

    n: int
    approximate: bool
    build_s: float
    index_mb: float
    rss_mb: float
    search_ms: list[float] = field(default_factory=list)
    index_ms: list[float] = field(default_factory=list)
    recall10: float | None = None
    ask_ms: list[float] = field(default_factory=list)


class VectorLookup:
    """A :class:`TextEmbedder` that serves precomputed vectors by text (and the real model for the rest)."""

    def __init__(self, real: SentenceTransformerEmbedder, table: dict[str, np.ndarray]) -> None:
        self._real, self._table = real, table

    @property
    def dim(self) -> int:
        return self._real.dim

    @property
    def model_id(self) -> str:
        return self._real.model_id

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if all(t in self._table for t in texts):
            return np.stack([self._table[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return self._real.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if all(t in self._table for t in texts):
            return np.stack([self._table[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return self._real.embed_passages(texts, progress=progress)


def speed_corpus(emb: CachedEmbeddings, n_max: int) -> tuple[list[str], np.ndarray]:
    """``n_max`` distinct item texts with passage vectors: real sentences, topped up with blends of two."""
    texts: list[str] = []
    for path in (
        "intents/clinc150/train.jsonl",
        "intents/clinc150/val.jsonl",
        "intents/smp2019_domain/train.jsonl",
    ):
        texts += [t for t, _ in read_jsonl(DATA / path)]
    for a, b, _ in read_pairs(DATA / "matching/lcqmc/dev.tsv", sep="\t"):
        texts += [a, b]
    for path in ("matching/stsb/stsb-en-dev.csv", "matching/stsb/stsb-zh-dev.csv"):
        for a, b, _ in read_pairs(DATA / path, sep=","):
            texts += [a, b]
    with (DATA / "real/yc_companies.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            texts.append(
                " ".join(
                    filter(
                        None,
                        (
                            r.get("name"),
                            r.get("short_description") or r.get("one_liner"),
                            r.get("long_description") or r.get("description"),
                        ),
                    )
                )
            )
    texts = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
    vecs = emb.get(texts, side="passage")
    real = len(texts)
    if n_max > real:
        pick = np.random.default_rng(SEED).integers(0, real, size=(n_max - real, 2))
        texts += [f"{texts[i]} / {texts[j]} #{k}" for k, (i, j) in enumerate(pick.tolist())]
        vecs = np.vstack([vecs, l2_normalise(vecs[pick[:, 0]] + vecs[pick[:, 1]])])
    return texts[:n_max], vecs[:n_max].astype(np.float32)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def percentile(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def speed_at(
    n: int,
    texts: list[str],
    vecs: np.ndarray,
    queries: list[str],
    qvecs: np.ndarray,
    *,
    real: SentenceTransformerEmbedder,
    weight: float,
    work: Path,
    ask: bool,
) -> SizeResult:
    """Build an n-item community through the product and time searches (and asks)."""
    import sqlalchemy as sa

    from bot.community import get_or_create_community
    from bot.db import create_db_engine, session_scope, upgrade_database
    from bot.models import Resource, utcnow
    from matching.index import DEFAULT_APPROXIMATE_FROM, IndexStore, VectorIndex
    from matching.search import IndexedMatcher

    data_dir = work / f"n{n}"
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(f"sqlite:///{data_dir / 'communitybot.sqlite3'}")
    upgrade_database(engine)
    with session_scope(engine) as s:
        cid = int(get_or_create_community(s, "default", settings=_settings(data_dir)).id or 0)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Resource.__table__),
            [  # type: ignore[attr-defined]
                {
                    "community_id": cid,
                    "title": t[:200],
                    "description": t[200:] or "",
                    "tags": "",
                    "url": "",
                    "created_at": now,
                    "updated_at": now,
                    "source": "bench",
                }
                for t in texts[:n]
            ],
        )
    from matching.documents import to_document

    with session_scope(engine) as s:
        rows = s.exec(select(Resource)).all()
        table = {to_document(r).text: vecs[i] for i, r in enumerate(sorted(rows, key=lambda r: r.id))}
    lookup = VectorLookup(real, {**table, **dict(zip(queries, qvecs, strict=True))})
    store = IndexStore(engine=engine, data_dir=data_dir, embedder=lookup)
    t0 = time.perf_counter()
    store.rebuild(community_id=cid, kinds=["resource"])
    store.lexical_search(community_id=cid, kind="resource", query="warm up", k=1)  # BM25 matrix built lazily
    build_s = time.perf_counter() - t0
    approximate = store.approximate(community_id=cid, kind="resource")
    index_mb = store.path_for(community_id=cid, kind="resource").stat().st_size / 2**20
    result = SizeResult(n=n, approximate=approximate, build_s=build_s, index_mb=index_mb, rss_mb=rss_mb())
    matcher = IndexedMatcher(
        engine=engine,
        data_dir=data_dir,
        embedder=lookup,
        lexical_weight=weight,
        store=store,
        explain_with_embeddings=False,
    )
    for i, q in enumerate(queries):
        t = time.perf_counter()
        store.search(community_id=cid, kind="resource", queries=qvecs[i : i + 1], k=20)
        store.lexical_search(community_id=cid, kind="resource", query=q, k=20)
        result.index_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        matcher.search(community_id=cid, query=q, kinds=["resource"], top_k=5)
        result.search_ms.append((time.perf_counter() - t) * 1000)
    if approximate or n >= DEFAULT_APPROXIMATE_FROM:
        ids = np.arange(1, n + 1)
        exact = VectorIndex.build(dim=vecs.shape[1], ids=ids, vectors=vecs[:n], approximate=False)
        approx = VectorIndex.build(dim=vecs.shape[1], ids=ids, vectors=vecs[:n], approximate=True)
        truth, got = exact.search(queries=qvecs, k=10), approx.search(queries=qvecs, k=10)
        result.recall10 = 100.0 * float(
            np.mean(
                [
                    len({i for i, _ in g} & {i for i, _ in t}) / max(1, len(t))
                    for g, t in zip(got, truth, strict=True)
                ]
            )
        )
    if ask:
        result.ask_ms = ask_latency(data_dir, engine, queries)
    engine.dispose()
    return result


def ask_latency(data_dir: Path, engine: Any, queries: list[str]) -> list[float]:
    """Wall time of whole asks through the console adapter, with the real models (ms per message)."""
    from adapters.console import ConsoleAdapter
    from bot.app import build_app

    app = build_app(_settings(data_dir), progress=False, engine=engine)
    console = ConsoleAdapter(handle=app.handle, community="default")
    for q in queries[:5]:  # load the models, sync the index, export ONNX once
        console.run_once(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        console.run_once(q)
        times.append((time.perf_counter() - t) * 1000)
    return times


def ask_queries() -> list[str]:
    """Questions a member would ask, English and Chinese, about topics the corpus holds."""
    return [
        "who can help me with a seed round for hardware?",
        "any guide on cloud credits?",
        "有人懂天使轮融资吗？",
        "谁能帮我找深圳的工厂",
        "how do I transfer money to another bank account",
        "有人懂 seed round 吗",
        "looking for someone who knows about travel insurance",
        "推荐一个做跨境电商的朋友",
        "can anyone recommend a good book on pricing?",
        "哪里可以学编程",
        "who knows about payroll and taxes for a small business",
        "我想找人一起做独立开发",
        "any events about machine learning next week?",
        "怎么申请信用卡",
        "who has built a mobile app?",
        "what's the best way to book a flight",
        "有没有懂法律的朋友",
        "need help with my pitch deck",
        "谁会做小程序",
        "who knows a good accountant",
    ] * 3


# ----------------------------------------------------------------------------------------------- report


def render(
    *,
    model: str,
    env: dict[str, str],
    sts: dict[str, float],
    lcqmc: dict[str, float],
    weight: float,
    retrieval: dict[str, dict[str, dict[str, float]]],
    dev_mrr: dict[str, dict[float, float]],
    calibrations: list[Calibration],
    product: tuple[float, float],
    speed: list[SizeResult],
    embed_per_s: float,
    quick: bool,
) -> str:
    """The Markdown report."""
    product_weight, product_threshold = product
    lines = [
        f"# Matching benchmark{' (QUICK smoke run: sizes and sets cut)' if quick else ''}",
        "",
        f"Model `{model}` (the default), lexical weight {product_weight} and match threshold "
        f"{product_threshold} as configured in `nlp/base_model.py`; written by `bench/matching.py` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {env['cpu']}; {env['os']}; Python {env['python']}; commit {env['commit']}.",
        "",
    ]
    clinc = retrieval.get("clinc150", {})
    lines += ["## Targets", "", "| target | reached | met |", "|---|---|---|"]
    if clinc:
        b, d = clinc["bm25"]["recall@5"], clinc["dense"]["recall@5"]
        f, fp = clinc["fused"]["recall@5"], clinc["fused_product"]["recall@5"]
        lines.append(
            "| fused recall@5 on CLINC150 beats BM25 alone and dense alone "
            f"| fused {f:.2f} % at w = {weight} "
            f"(tuned on CLINC150/SMP2019 dev), BM25 {b:.2f} %, dense {d:.2f} %; at the product's w = "
            f"{product_weight}: {fp:.2f} % | {'yes' if f > b and f > d else 'NO'} at w = {weight}; "
            f"{'yes' if fp > b and fp > d else 'NO'} at w = {product_weight} |"
        )
    gap = sts["en"] - sts["en_zh"]
    lines.append(
        f"| en<->zh STS-B Spearman within 10 points of en-only | en {sts['en']:.1f}, en<->zh "
        f"{sts['en_zh']:.1f} (gap {gap:.1f}) | {'yes' if gap <= 10 else 'NO'} |"
    )
    big = max(speed, key=lambda r: r.n) if speed else None
    if big:
        p99 = percentile(big.search_ms, 99)
        lines.append(
            f"| search p99 <= 5 ms at {big.n:,} items | {p99:.2f} ms (matcher search, query vector "
            f"given; index alone {percentile(big.index_ms, 99):.2f} ms) | {'yes' if p99 <= 5 else 'NO'} |"
        )
        if big.ask_ms:
            p50 = percentile(big.ask_ms, 50)
            lines.append(
                f"| whole `ask` p50 <= 40 ms at {big.n:,} items | {p50:.1f} ms | "
                f"{'yes' if p50 <= 40 else 'NO'} |"
            )
        lines.append(
            f"| building {big.n:,} items reported | {big.build_s:.1f} s index build + "
            f"{big.n / embed_per_s / 60:.0f} min of embedding at {embed_per_s:.0f} passages/s | yes |"
        )
    lines += [
        "",
        "## Similarity (STS-B dev, LCQMC dev)",
        "",
        f"STS-B dev, {int(sts['pairs'])} pairs, Spearman x100 of cosine vs gold: **en {sts['en']:.1f}**, "
        f"**zh {sts['zh']:.1f}**, **en<->zh {sts['en_zh']:.1f}** (English s1 with Chinese s2 and the "
        "reverse, averaged; both sides embedded as queries, as e5's authors do for STS).",
        "",
        f"LCQMC dev, {int(lcqmc['pairs'])} pairs: **accuracy {lcqmc['accuracy']:.2f} %** at the best cosine "
        f"threshold {lcqmc['threshold']:.3f} (chosen on the same pairs: an upper bound).",
        "",
        "## Intent utterances as retrieval",
        "",
        f"Fused score = cosine + w x BM25 coverage. **w = {weight}** is the best on dev queries (10 % of "
        "each "
        "corpus label held out, mean MRR@10 of both datasets); test queries are never used in tuning. "
        f"`fused (product)` is the product's w = {product_weight}, tuned on the community data below.",
        "",
        "| dataset | queries | corpus | method | recall@5 | MRR@10 |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "bm25": "BM25 alone",
        "dense": "dense alone",
        "fused": f"fused, w = {weight}",
        "fused_product": f"fused (product), w = {product_weight}",
    }
    for name, methods in retrieval.items():
        nq, nc = int(methods["queries"]["n"]), int(methods["queries"]["corpus"])
        for m, label in names.items():
            lines.append(
                f"| {name} | {nq} | {nc} | {label} | {methods[m]['recall@5']:.2f} % | "
                f"{methods[m]['mrr@10']:.2f} % |"
            )
    lines += [
        "",
        "Dev MRR@10 by weight: "
        + "; ".join(f"{n}: " + ", ".join(f"{w}->{v:.2f}" for w, v in d.items()) for n, d in dev_mrr.items()),
        "",
        "## The lexical weight and the match threshold, on the sample community",
        "",
        f"`bench/sample_relevance.jsonl`: {len(RELEVANCE.read_text(encoding='utf-8').splitlines())} "
        "questions written by hand for `data/sample` (English, Chinese, code-mixed; 21 that nothing there "
        "answers), each "
        "listing the items a community manager would show. Every question->item pair of the kinds the "
        "question searches is scored by the product's matcher; an English or Chinese question reads only "
        "items in its language (the matcher's `languages` filter, as for a member whose profile states one "
        "language), a mixed one reads both. Per model, the weight with the best MRR of the answerable "
        "questions is chosen, then the threshold on the fused score with the best balanced accuracy "
        "(relevant pairs shown, irrelevant pairs hidden).",
        "",
    ]
    for cal in calibrations:
        lines += [
            f"### {cal.model}: w = {cal.weight}, threshold {cal.threshold:.3f}",
            "",
            "| w | MRR | best threshold | balanced accuracy |",
            "|---|---|---|---|",
        ]
        lines += [f"| {w} | {m:.1f} % | {t:.3f} | {b:.1f} % |" for w, (m, t, b) in cal.sweep.items()]
        lines += [
            "",
            "| questions | pairs | relevant shown | irrelevant hidden | answerable: top match relevant and "
            'shown | unanswerable: "no good match yet" |',
            "|---|---|---|---|---|---|",
        ]
        for lang, row in cal.figures.items():
            lines.append(
                f"| {lang} | {int(row['pairs'])} | {row['relevant_shown']:.1f} % "
                f"| {row['irrelevant_hidden']:.1f} % "
                f"| {int(row['top_relevant'])}/{int(row['answerable'])} "
                f"| {int(row['no_match'])}/{int(row['unanswerable'])} |"
            )
        lines.append("")
    lines += [
        "## Speed and memory",
        "",
        f"Embedding (the model's cost, not the index's): {embed_per_s:.0f} passages/s on this machine.",
        "",
        "| items | index | build (s) | index file (MB) | peak RSS (MB) | search p50 / p99 (ms) | index alone "
        "p50 / p99 (ms) | IVF recall@10 vs exact | ask p50 / p99 (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in speed:
        rec = f"{r.recall10:.1f} %" if r.recall10 is not None else "exact"
        ask = f"{percentile(r.ask_ms, 50):.1f} / {percentile(r.ask_ms, 99):.1f}" if r.ask_ms else "-"
        lines.append(
            f"| {r.n:,} | {'IVF' if r.approximate else 'exact'} | {r.build_s:.2f} | {r.index_mb:.1f} | "
            f"{r.rss_mb:.0f} | {percentile(r.search_ms, 50):.2f} / {percentile(r.search_ms, 99):.2f} | "
            f"{percentile(r.index_ms, 50):.2f} / {percentile(r.index_ms, 99):.2f} | {rec} | {ask} |"
        )
    lines += [
        "",
        "Search = `IndexedMatcher.search` for 5 results with the query vector given (dense + BM25 "
        "candidates, both scores for each, fusion, the database re-read and filter; no field "
        "embeddings for the why), 60 questions. Index alone = FAISS top 20 + BM25 top 20. Ask = the console "
        "adapter's whole message (intent with the shipped model on ONNX Runtime, query embedding, search, "
        "reply, message log), same 60 questions. Build = FAISS (and k-means for IVF) + BM25 from vectors "
        "already embedded. Peak RSS is the benchmark process's, models included.",
        "",
        f"Versions: {env['versions']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; prints one JSON line of the headline figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument(
        "--calibrate",
        default="multilingual-e5-small,all-MiniLM-L6-v2",
        help="models whose lexical weight and threshold are swept on the sample community",
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "communitybot-bench")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not DATA.is_dir():
        print(
            f"The shared data folder {DATA} is missing; the benchmark reads real data from it.",
            file=sys.stderr,
        )
        return 2
    sizes = [int(s) for s in args.sizes.split(",")] if not args.quick else [1000, 5000]
    real = SentenceTransformerEmbedder.from_base_model(args.model)
    product = (real.spec.lexical_weight, real.spec.match_threshold)
    emb = CachedEmbeddings(real, args.cache)
    log.info("STS-B and LCQMC...")
    sts, lcqmc = sts_figures(emb), lcqmc_figures(emb)
    log.info("retrieval...")
    weight, retrieval, dev_mrr = retrieval_figures(emb, product_weight=product[0])
    log.info("weight %s; %s; dev MRR %s", weight, json.dumps(retrieval), json.dumps(dev_mrr))
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        calibrations = []
        for name in [m for m in args.calibrate.split(",") if m]:
            log.info("calibrating %s on the sample community...", name)
            embedder = real if name == args.model else SentenceTransformerEmbedder.from_base_model(name)
            calibrations.append(calibrate(name, embedder, Path(tmp)))
            log.info("%s: %s", name, calibrations[-1])
        log.info("speed...")
        texts, vecs = speed_corpus(emb, max(sizes))
        t = time.perf_counter()
        real.embed_passages(texts[:256])
        embed_per_s = 256 / (time.perf_counter() - t)
        queries = ask_queries()
        qvecs = emb.get(queries, side="query")
        speed = [
            speed_at(
                n,
                texts,
                vecs,
                queries,
                qvecs,
                real=real,
                weight=product[0],
                work=Path(tmp),
                ask=n == max(sizes),
            )
            for n in sizes
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    report = render(
        model=args.model,
        env=environment(),
        sts=sts,
        lcqmc=lcqmc,
        weight=weight,
        retrieval=retrieval,
        dev_mrr=dev_mrr,
        calibrations=calibrations,
        product=product,
        speed=speed,
        embed_per_s=embed_per_s,
        quick=args.quick,
    )
    (args.out / "matching.md").write_text(report, encoding="utf-8")
    print(
        json.dumps(
            {
                "weight": weight,
                "product": product,
                "calibrated": {c.model: [c.weight, c.threshold] for c in calibrations},
                "sts": sts,
                "lcqmc": lcqmc,
                "clinc_recall5": {
                    m: retrieval["clinc150"][m]["recall@5"]
                    for m in ("bm25", "dense", "fused", "fused_product")
                },
                "search_p99_ms": {r.n: percentile(r.search_ms, 99) for r in speed},
                "ask_p50_ms": {r.n: percentile(r.ask_ms, 50) for r in speed if r.ask_ms},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
