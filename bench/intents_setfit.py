"""The SetFit peer of ``bench/intents.py``: contrastive fine-tuning of a sentence encoder + logistic head.

SetFit (Tunstall et al., 2022, "Efficient Few-Shot Learning Without Prompts") fine-tunes the whole
sentence-transformers body on labelled sentence pairs (cosine-similarity loss: 1 for same intent, 0 for
different intents), then fits a scikit-learn ``LogisticRegression`` on the tuned embeddings.

Pair sampling. ``setfit.Trainer`` builds its pairs by enumerating all ``n (n + 1) / 2`` sentence pairs in a
shuffled order (``setfit.sampler.shuffle_combinations``): for CLINC150's ~13,600 training sentences that is
~92 million index pairs (several GB of index arrays) before a single step, and an epoch over the default
"oversampling" set would take days on 2 cores. Here :func:`sample_pairs` replaces that step (the trainer's
``get_dataset``) with the sampling of SetFit's original ``sentence_pairs_generation``: anchors are visited
in a seeded shuffled order, each giving one positive pair (a random other sentence of its intent; itself
when the intent has a single sentence) and one negative pair (a random sentence of another intent), until
a fixed number of pairs is reached. The body then trains for one epoch over those pairs. Everything else
(loss, learning rate 2e-5, batch 16, warm-up 10%, logistic head) is SetFit's default.

This module imports ``setfit`` at the top; ``bench/intents.py`` imports it only when SetFit is run.
"""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset
from setfit import SetFitModel, Trainer, TrainingArguments
from transformers import ProgressCallback

BODY_BATCH_SIZE = 16
HEAD_MAX_ITER = 1000
"""``LogisticRegression(max_iter=...)``: sklearn's default 100 does not converge on 151 intents."""


def sample_pairs(labels: Sequence[int], *, n_pairs: int, seed: int) -> list[tuple[int, int, float]]:
    """Sample ``n_pairs`` balanced contrastive pairs of sentence indices.

    Anchors are all indices in a ``random.Random(seed)`` shuffled order (reshuffled after each pass);
    each anchor yields one positive ``(anchor, same-label index, 1.0)`` then one negative
    ``(anchor, other-label index, 0.0)`` pair. Memory and time are ``O(n_pairs + len(labels))``.

    Args:
        labels: the label (any hashable id) of each sentence; at least two distinct labels.
        n_pairs: how many pairs to return (an odd count ends on a positive pair).
        seed: seeds the shuffles and partner choices.

    Returns:
        ``(i, j, similarity)`` triples, positives and negatives alternating.

    Raises:
        ValueError: fewer than two distinct labels.
    """
    by_label: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    if len(by_label) < 2:
        raise ValueError("Contrastive pairs need at least two labels.")
    rng = random.Random(seed)
    n = len(labels)
    pairs: list[tuple[int, int, float]] = []
    order: list[int] = []
    while len(pairs) < n_pairs:
        if not order:
            order = list(range(n))
            rng.shuffle(order)
        anchor = order.pop()
        same = by_label[labels[anchor]]
        partner = anchor if len(same) == 1 else rng.choice([j for j in rng.sample(same, 2) if j != anchor])
        pairs.append((anchor, partner, 1.0))
        if len(pairs) == n_pairs:
            break
        other = rng.randrange(n)
        while labels[other] == labels[anchor]:
            other = rng.randrange(n)
        pairs.append((anchor, other, 0.0))
    return pairs


class _SampledPairsTrainer(Trainer):
    """``setfit.Trainer`` whose contrastive dataset comes from :func:`sample_pairs`."""

    def __init__(self, *, n_pairs: int, pair_seed: int, **kwargs: Any) -> None:
        self._n_pairs = n_pairs
        self._pair_seed = pair_seed
        super().__init__(**kwargs)

    def get_dataset(self, x: list[str], y: list[int], args: TrainingArguments,
                    max_pairs: int = -1) -> tuple[Dataset, Any]:
        """The pairs dataset (``sentence_1``, ``sentence_2``, ``label``) and the loss on the body."""
        pairs = sample_pairs(y, n_pairs=self._n_pairs, seed=self._pair_seed)
        dataset = Dataset.from_dict({"sentence_1": [x[i] for i, _, _ in pairs],
                                     "sentence_2": [x[j] for _, j, _ in pairs],
                                     "label": [s for _, _, s in pairs]})
        return dataset, args.loss(self.model.model_body)


@dataclass
class SetFitIntentModel:
    """A trained SetFit model over intent indices ``0..n_labels-1``.

    Attributes:
        model: the ``SetFitModel`` (tuned body + logistic head).
        n_labels: columns of :meth:`probabilities`.
        query_prefix: text put before each utterance (``"query: "`` for e5).
    """

    model: SetFitModel
    n_labels: int
    query_prefix: str = ""

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``float64 [len(texts), n_labels]`` head probabilities, column ``i`` = intent index ``i``."""
        raw = self.model.predict_proba([self.query_prefix + t for t in texts], batch_size=64,
                                       as_numpy=True)
        probs = np.zeros((len(texts), self.n_labels), dtype=np.float64)
        probs[:, np.asarray(self.model.model_head.classes_, dtype=int)] = raw
        return probs


def train_setfit(*, texts: Sequence[str], targets: Sequence[int], n_labels: int, model_path: str,
                 query_prefix: str, n_pairs: int, seed: int, progress: bool) -> SetFitIntentModel:
    """Fine-tune a SetFit model on ``texts`` / integer ``targets`` with ``n_pairs`` sampled pairs.

    Args:
        texts: training utterances.
        targets: their intent indices in ``0..n_labels-1``.
        n_labels: the number of intents (columns of the returned probabilities).
        model_path: a local sentence-transformers folder (the same base model as the LoRA classifier).
        query_prefix: put before every utterance, in training and prediction alike.
        n_pairs: contrastive pairs for the one body epoch (see the module docstring).
        seed: seeds pair sampling, the trainer and the head.
        progress: show the trainer's progress bars.
    """
    model = SetFitModel.from_pretrained(
        model_path, head_params={"max_iter": HEAD_MAX_ITER, "random_state": seed})
    with tempfile.TemporaryDirectory(prefix="setfit-bench-") as tmp:
        args = TrainingArguments(output_dir=tmp, batch_size=BODY_BATCH_SIZE, num_epochs=1, seed=seed,
                                 report_to="none", save_strategy="no", logging_steps=10**9,
                                 logging_first_step=False, show_progress_bar=progress)
        train = Dataset.from_dict({"text": [query_prefix + t for t in texts], "label": list(targets)})
        trainer = _SampledPairsTrainer(n_pairs=n_pairs, pair_seed=seed, model=model, args=args,
                                       train_dataset=train)
        if not progress:  # setfit does not pass show_progress_bar on to the transformers trainer
            trainer.remove_callback(ProgressCallback)
        trainer.train()
    return SetFitIntentModel(model=model, n_labels=n_labels, query_prefix=query_prefix)
