"""The lexical side of matching: bilingual tokenisation and a BM25 index keyed by database ids.

Tokens: text is NFKC-normalised and lower-cased; Latin words (``node.js``, ``c++`` and ``c#`` stay whole)
are stemmed crudely (:func:`stem`: ``investors`` -> ``invest``) and dropped when they are stop words or
question fillers; runs of Chinese characters are segmented by ``jieba`` in search mode (``天使轮融资`` ->
``天使``, ``天使轮``, ``融资``), single characters and fillers (``有人``, ``什么``) dropped. The same function
tokenises documents and queries, so a query word and a document word meet exactly when they are equal.

Scores: Okapi BM25 (Robertson & Zaragoza, 2009, "The Probabilistic Relevance Framework: BM25 and Beyond"),
Lucene's variant as implemented by ``bm25s`` (Lù, 2024, "BM25S: Orders of magnitude faster lexical search
via eager sparse scoring"): per query term ``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``. Raw BM25 has no fixed scale, so :meth:`LexicalIndex.scores`
also gives a *coverage* in [0, 1]: the BM25 score divided by what the query scores against a document of
average length holding each query term once (``sum(idf) / (1 + k1)``; a term no document has counts with
the idf it would have at df = 0), clipped at 1. It reads as the share of the query's information the
document covers, and it is what ranking fuses with the cosine.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: BM25 term-frequency saturation and length normalisation (the usual defaults; Robertson & Zaragoza 2009).
BM25_K1 = 1.2
BM25_B = 0.75

LATIN_RE = re.compile(r"[a-z0-9][a-z0-9+#.]*[a-z0-9+#]|[a-z0-9]")
"""A Latin word: letters and digits, keeping ``node.js``, ``c++`` and ``c#`` whole; hyphens split."""
CJK_RUN_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")

STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "at", "by", "from", "is",
    "are", "was", "were", "be", "been", "am", "do", "does", "did", "done", "i", "me", "my", "we", "us",
    "our", "you", "your", "he", "she", "they", "them", "their", "it", "its", "this", "that", "these",
    "those", "who", "whom", "whose", "what", "where", "when", "why", "how", "which", "any", "anyone",
    "anybody", "someone", "somebody", "something", "here", "there", "can", "could", "would", "should",
    "will", "shall", "may", "might", "must", "has", "have", "had", "about", "help", "know", "knows",
    "looking", "look", "find", "please", "get", "got", "some", "not", "no", "yes", "if", "as", "so",
    "just", "also", "like", "want", "wants", "need", "needs", "there's", "i'm", "who's", "what's",
    "anything", "more", "most", "very", "much", "many", "into", "over", "than", "then", "out", "up",
    "down", "all", "one", "two", "let", "tell", "show", "give",
})
"""English stop words and question fillers ("anyone", "know", "help"): they say nothing about the topic."""

CJK_STOPWORDS = frozenset({
    "有没有", "什么", "哪些", "一下", "我们", "你们", "他们", "谁能", "有人", "可以", "的人", "一个", "没有",
    "请问", "知道", "帮忙", "需要", "活动", "怎么", "怎么样", "如何", "哪里", "哪个", "这个", "那个",
    "还是", "或者", "就是", "是不是", "能不能", "大家", "推荐", "谢谢", "一些", "现在", "自己", "已经",
    "因为", "所以",
})
"""Chinese question fillers of two or more characters (single characters are always dropped)."""

_SUFFIXES = ("ments", "ment", "ings", "ing", "ers", "ors", "er", "or", "ed", "es", "s")
_jieba_lock = threading.Lock()
_jieba_ready = False


def stem(word: str) -> str:
    """A crude English stem: invests, investing, investor -> invest (stems keep at least 4 letters; words
    with digits or symbols, such as ``node.js``, are left alone)."""
    if not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _segment(run: str) -> list[str]:
    """jieba's search-mode segmentation of one run of Chinese characters (jieba initialised once, quietly)."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return list(jieba.cut_for_search(run))


def tokenize(text: str) -> list[str]:
    """The BM25 tokens of ``text`` in order (duplicates kept): stemmed Latin words and jieba words.

    Examples: ``"Anyone know about angel investors?"`` -> ``["angel", "invest"]``;
    ``"有人懂天使轮融资吗"`` -> ``["天使", "融资"]``; ``"深圳的工厂"`` -> ``["深圳", "工厂"]``.
    """
    low = unicodedata.normalize("NFKC", text).casefold()
    tokens = [stem(w) for w in LATIN_RE.findall(low) if w not in STOPWORDS and len(w) > 1]
    for run in CJK_RUN_RE.findall(low):
        tokens.extend(w for w in _segment(run) if len(w) > 1 and w not in CJK_STOPWORDS)
    return tokens


class LexicalIndex:
    """BM25 over tokenised documents whose ids are database ids; changes are cheap, scoring rebuilds lazily.

    Documents are kept as token lists; the ``bm25s`` score matrix (and the document frequencies) are built
    on the first search after a change, in time linear in the total number of tokens (about a second per
    100k short documents on one core). Thread-safe.

    Args:
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    def __init__(self, *, k1: float = BM25_K1, b: float = BM25_B) -> None:
        self.k1, self.b = k1, b
        self._tokens: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        self._dirty = True
        self._model: object | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._pos: dict[int, int] = {}
        self._idf: dict[str, float] = {}
        self._max_idf = 0.0

    def __len__(self) -> int:
        return len(self._tokens)

    def ids(self) -> list[int]:
        """Sorted database ids held."""
        with self._lock:
            return sorted(self._tokens)

    def tokens(self) -> Mapping[int, list[str]]:
        """``{id: tokens}`` (a copy) for persistence."""
        with self._lock:
            return {i: list(t) for i, t in self._tokens.items()}

    def upsert(self, *, ids: Sequence[int], texts: Sequence[str] | None = None,
               tokens: Sequence[Sequence[str]] | None = None) -> None:
        """Add or replace documents, given as ``texts`` (tokenised here) or already as ``tokens``.

        Raises:
            ValueError: neither or both of ``texts``/``tokens`` given, or lengths disagree with ``ids``.
        """
        if (texts is None) == (tokens is None):
            raise ValueError("give exactly one of texts= or tokens=")
        toks = [tokenize(t) for t in texts] if texts is not None else [list(t) for t in tokens or ()]
        if len(toks) != len(ids):
            raise ValueError(f"{len(toks)} documents for {len(ids)} ids")
        with self._lock:
            for i, t in zip(ids, toks, strict=True):
                self._tokens[int(i)] = t
            self._dirty = self._dirty or bool(toks)

    def remove(self, *, ids: Iterable[int]) -> int:
        """Remove documents (unknown ids are ignored); returns how many were removed."""
        with self._lock:
            n = sum(self._tokens.pop(int(i), None) is not None for i in ids)
            self._dirty = self._dirty or n > 0
            return n

    def scores(self, query: str | Sequence[str], *, ids: Sequence[int] | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BM25 of ``query`` (a text, or its tokens) against the documents ``ids`` (default: all).

        Returns:
            ``(ids, bm25, coverage)``: ``int64``, ``float32``, ``float32`` arrays of the same length, in the
            order of ``ids`` (or of increasing id); unknown ids score 0. ``coverage`` is BM25 over the
            query's reference score (see the module docstring), in [0, 1].
        """
        all_ids, (bm25, coverage), pos = self._coverage_all(query)
        if ids is None:
            return all_ids, bm25, coverage
        out_ids = np.asarray(ids, dtype=np.int64)
        return out_ids, _pick(bm25, pos, out_ids), _pick(coverage, pos, out_ids)

    def top(self, query: str | Sequence[str], *, k: int) -> list[tuple[int, float]]:
        """The ``k`` documents of highest coverage for ``query`` with coverage > 0, best first, as
        ``(id, coverage)``; ties by lower id."""
        return self.search(query, k=k)[0]

    def search(self, query: str | Sequence[str], *, k: int, ids: Sequence[int] = (),
               ) -> tuple[list[tuple[int, float]], np.ndarray]:
        """:meth:`top` and the coverage of the documents ``ids`` (``float32``, 0 for unknown ids), from
        one scoring pass over the index."""
        all_ids, (_, coverage), pos = self._coverage_all(query)
        of_ids = _pick(coverage, pos, ids)
        hit = np.flatnonzero(coverage > 0)
        if k <= 0 or hit.size == 0:
            return [], of_ids
        if hit.size > k:
            hit = hit[np.argpartition(-coverage[hit], k - 1)[:k]]
        order = sorted(hit.tolist(), key=lambda r: (-float(coverage[r]), int(all_ids[r])))
        return [(int(all_ids[r]), float(coverage[r])) for r in order], of_ids

    # --- internals ----------------------------------------------------------------------------------------

    def _coverage_all(self, query: str | Sequence[str],
                      ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], Mapping[int, int]]:
        """One scoring pass over every document: ``(ids, (bm25, coverage), {id: position})``, all from the
        same state of the index (taken under its lock)."""
        q = tokenize(query) if isinstance(query, str) else list(query)
        with self._lock:
            self._refresh_locked()
            ids, pos = self._ids, self._pos
            bm25 = self._score_all_locked(q)
            ceiling = self._ceiling_locked(q)
        coverage = (bm25 / ceiling).astype(np.float32) if ceiling > 0 else np.zeros_like(bm25)
        return ids.copy(), (bm25.astype(np.float32, copy=False), np.clip(coverage, 0.0, 1.0)), pos

    def _refresh_locked(self) -> None:
        if not self._dirty:
            return
        import bm25s

        # bm25s sets its own logger to DEBUG when imported and logs every index build: quiet it here,
        # after the import (a level set before it would be overwritten)
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        ids = np.array(sorted(self._tokens), dtype=np.int64)
        corpus = [self._tokens[int(i)] for i in ids]
        df: Counter[str] = Counter()
        for toks in corpus:
            df.update(set(toks))
        n = len(corpus)
        self._idf = {t: _idf(n, c) for t, c in df.items()}
        self._max_idf = _idf(n, 0)
        model = None
        if n and df:
            model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
            model.index(corpus, show_progress=False)
        self._model, self._ids = model, ids
        self._pos = {int(i): r for r, i in enumerate(ids)}
        self._dirty = False

    def _score_all_locked(self, query_tokens: Sequence[str]) -> np.ndarray:
        n = len(self._ids)
        model = self._model
        if model is None or not query_tokens:
            return np.zeros(n, dtype=np.float32)
        known = [model.vocab_dict[t] for t in dict.fromkeys(query_tokens)  # type: ignore[attr-defined]
                 if t in self._idf]
        if not known:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(model.get_scores_from_ids(known), dtype=np.float32)  # type: ignore[attr-defined]

    def _ceiling_locked(self, query_tokens: Sequence[str]) -> float:
        total = sum(self._idf.get(t, self._max_idf) for t in dict.fromkeys(query_tokens))
        return float(total) / (1.0 + self.k1)


def _pick(values: np.ndarray, pos: Mapping[int, int], ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """``values`` (one per document, in index order) of the documents ``ids``; 0 for unknown ids."""
    rows = np.array([pos.get(int(i), -1) for i in ids], dtype=np.int64)
    out = np.zeros(len(rows), dtype=np.float32)
    known = rows >= 0
    out[known] = values[rows[known]]
    return out


def _idf(n_docs: int, df: int) -> float:
    """Lucene's BM25 idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (always positive)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
