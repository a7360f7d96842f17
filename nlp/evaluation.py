"""Evaluating an intent classifier on labelled utterances: accuracy, macro-F1, out-of-scope, ECE, latency.

:func:`evaluate` returns exactly the eight figures of :data:`METRIC_KEYS` (``communitybot nlp eval``
prints them). Accuracy figures count the classifier's final decision, out-of-scope threshold included
(:meth:`nlp.classifier.LoraIntentClassifier.predict`); the calibration error looks at the calibrated
probabilities; latency times one message at a time, as the bot sees messages.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.errors import ModelError
from bot.ports import IntentClassifier, IntentPrediction
from nlp.classifier import OOS_LABEL, expected_calibration_error

METRIC_KEYS: tuple[str, ...] = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "oos_precision",
                                "ece", "latency_ms_p50", "latency_ms_p99")
"""The keys of :func:`evaluate`'s result, in display order."""
DEFAULT_LATENCY_MESSAGES = 200
"""Messages timed one by one for the latency percentiles."""
EVAL_BATCH_SIZE = 64
"""Messages per ``predict`` call for the accuracy figures."""


def evaluate(classifier: IntentClassifier, examples: Sequence[tuple[str, str]], *,
             oos_label: str | None = None, latency_messages: int = DEFAULT_LATENCY_MESSAGES,
             progress: bool = False) -> dict[str, float | None]:
    """Score ``classifier`` on labelled ``examples``.

    Args:
        classifier: any :class:`bot.ports.IntentClassifier` (``labels`` and ``predict``), e.g. a
            :class:`nlp.classifier.LoraIntentClassifier`.
        examples: ``(text, gold label)`` pairs, at least one. Gold labels the model does not know count
            as errors.
        oos_label: the out-of-scope label; default the classifier's ``oos_label`` attribute if it has
            one, else ``"oos"``.
        latency_messages: how many messages (evenly spread over ``examples``, at most all of them) are
            predicted one at a time, ``predict([text])``, for the latency figures; one untimed warm-up
            call comes first. ``0`` skips the timing (latencies ``None``).
        progress: show tqdm progress bars on stderr.

    Returns:
        A dict with exactly the keys of :data:`METRIC_KEYS`:

        - ``accuracy``: share of rows whose predicted intent equals the gold label, in [0, 1].
        - ``macro_f1``: the unweighted mean of per-label F1 over the gold labels present
          (``sklearn.metrics.f1_score(average="macro")``, 0 for a label never predicted), in [0, 1].
        - ``in_scope_accuracy``: accuracy over the rows whose gold label is not ``oos_label``; equal to
          ``accuracy`` when there are no out-of-scope rows; ``None`` when every row is out of scope.
        - ``oos_recall``: share of out-of-scope rows predicted ``oos_label``; ``None`` without such rows.
        - ``oos_precision``: share of ``oos_label`` predictions that are out-of-scope rows; ``None``
          without out-of-scope rows or when nothing was predicted ``oos_label``.
        - ``ece``: expected calibration error (15 bins, Guo et al., 2017, eq. 3) of the top calibrated
          probability of each row's ``ranking`` (the model's distribution, before the threshold).
        - ``latency_ms_p50`` / ``latency_ms_p99``: percentiles, in milliseconds of wall-clock time, of one
          ``predict([text])`` call (tokenising included); ``None`` when ``latency_messages`` is 0.

    Raises:
        ModelError: no examples, or a classifier that returns the wrong number of predictions.
    """
    from sklearn.metrics import f1_score
    from tqdm import tqdm

    if not examples:
        raise ModelError("There is nothing to evaluate: the test set has no examples.")
    if oos_label is None:
        oos_label = str(getattr(classifier, "oos_label", OOS_LABEL))
    texts = [text for text, _ in examples]
    gold = [label for _, label in examples]

    preds: list[IntentPrediction] = []
    with tqdm(total=len(texts), desc="Predicting", unit="msg", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        for start in range(0, len(texts), EVAL_BATCH_SIZE):
            chunk = texts[start:start + EVAL_BATCH_SIZE]
            got = classifier.predict(chunk)
            if len(got) != len(chunk):
                raise ModelError(f"The classifier returned {len(got)} predictions for {len(chunk)} texts.")
            preds += got
            bar.update(len(chunk))
    predicted = [p.intent for p in preds]

    gold_arr, pred_arr = np.array(gold, dtype=object), np.array(predicted, dtype=object)
    right = gold_arr == pred_arr
    is_oos = gold_arr == oos_label
    said_oos = pred_arr == oos_label
    present = sorted(set(gold))
    result: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    result["accuracy"] = float(right.mean())
    result["macro_f1"] = float(f1_score(gold, predicted, labels=present, average="macro", zero_division=0))
    result["in_scope_accuracy"] = float(right[~is_oos].mean()) if (~is_oos).any() else None
    if is_oos.any():
        result["oos_recall"] = float(said_oos[is_oos].mean())
        result["oos_precision"] = float(is_oos[said_oos].mean()) if said_oos.any() else None
    result["ece"] = _ece(classifier.labels, preds, gold)
    p50, p99 = _latency_ms(classifier, texts, n=latency_messages, progress=progress)
    result["latency_ms_p50"], result["latency_ms_p99"] = p50, p99
    return result


def _ece(labels: Sequence[str], preds: Sequence[IntentPrediction], gold: Sequence[str]) -> float:
    """ECE from each prediction's full ``ranking`` (``[n, k]`` over ``labels``); unknown gold never right."""
    index = {label: i for i, label in enumerate(labels)}
    probs = np.zeros((len(preds), len(labels)), dtype=np.float64)
    for row, pred in enumerate(preds):
        for label, prob in pred.ranking:
            if label in index:
                probs[row, index[label]] = prob
    targets = np.array([index.get(label, -1) for label in gold], dtype=np.int64)
    return expected_calibration_error(probs=probs, targets=targets)


def _latency_ms(classifier: IntentClassifier, texts: Sequence[str], *, n: int,
                progress: bool) -> tuple[float | None, float | None]:
    """p50 and p99 (ms) of ``predict([text])`` over ``n`` texts spread evenly over ``texts``."""
    from tqdm import tqdm

    if n <= 0:
        return None, None
    picks = np.unique(np.linspace(0, len(texts) - 1, num=min(n, len(texts))).round().astype(int))
    classifier.predict([texts[int(picks[0])]])  # warm-up: first-call allocations are not the steady state
    times: list[float] = []
    for i in tqdm(picks, desc="Timing single messages", unit="msg", file=sys.stderr, disable=not progress,
                  dynamic_ncols=True):
        started = time.perf_counter()
        classifier.predict([texts[int(i)]])
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def format_metrics(metrics: dict[str, Any]) -> str:
    """A two-column text table of :func:`evaluate`'s result (fractions as percentages, ``n/a`` for None)."""
    lines = []
    for key in METRIC_KEYS:
        value = metrics.get(key)
        if value is None:
            shown = "n/a"
        elif key.startswith("latency"):
            shown = f"{value:.1f} ms"
        elif key == "ece":
            shown = f"{value:.4f}"
        else:
            shown = f"{100 * value:.2f} %"
        lines.append(f"{key:<18} {shown}")
    return "\n".join(lines)
