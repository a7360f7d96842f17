"""nlp.evaluation.evaluate on a fake classifier whose every figure can be worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bot.errors import ModelError
from bot.ports import IntentPrediction
from nlp.evaluation import METRIC_KEYS, evaluate, format_metrics

LABELS = ("a", "b", "oos")
# text -> (predicted intent, its probability); the other two labels share the rest
TABLE = {"t1": ("a", 0.9), "t2": ("b", 0.6), "t3": ("b", 0.8), "t4": ("oos", 0.7), "t5": ("a", 0.5),
         "t6": ("a", 0.4)}
GOLD = [("t1", "a"), ("t2", "a"), ("t3", "b"), ("t4", "oos"), ("t5", "oos"), ("t6", "b")]


class FakeClassifier:
    """Looks predictions up in TABLE and records the size of every ``predict`` call."""

    labels = LABELS
    oos_label = "oos"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        self.calls.append(len(texts))
        out = []
        for text in texts:
            intent, prob = TABLE[text]
            rest = [(label, (1 - prob) / 2) for label in LABELS if label != intent]
            out.append(IntentPrediction(intent=intent, confidence=prob, ranking=((intent, prob), *rest)))
        return out


def test_every_figure_by_hand() -> None:
    fake = FakeClassifier()
    m = evaluate(fake, GOLD)
    assert tuple(m) == METRIC_KEYS
    assert m["accuracy"] == pytest.approx(3 / 6)  # t1, t3, t4
    assert m["in_scope_accuracy"] == pytest.approx(2 / 4)  # t1, t3 of t1 t2 t3 t6
    assert m["oos_recall"] == pytest.approx(1 / 2)  # t4 of t4 t5
    assert m["oos_precision"] == pytest.approx(1.0)  # only t4 was predicted oos
    # F1: a (P 1/3, R 1/2) = 0.4; b (P 1/2, R 1/2) = 0.5; oos (P 1, R 1/2) = 2/3
    assert m["macro_f1"] == pytest.approx((0.4 + 0.5 + 2 / 3) / 3)
    # each confidence falls in its own of the 15 bins: mean |right - conf|
    assert m["ece"] == pytest.approx((0.1 + 0.6 + 0.2 + 0.3 + 0.5 + 0.4) / 6)
    assert m["latency_ms_p50"] is not None and m["latency_ms_p99"] is not None
    assert 0 <= m["latency_ms_p50"] <= m["latency_ms_p99"]


def test_latency_is_measured_one_message_at_a_time() -> None:
    fake = FakeClassifier()
    evaluate(fake, GOLD, latency_messages=3)
    assert fake.calls == [6, 1, 1, 1, 1]  # one batch for the figures, a warm-up, then 3 timed messages
    fake.calls.clear()
    evaluate(fake, GOLD)  # the default 200 is capped at the 6 examples
    assert fake.calls == [6] + [1] * 7
    fake.calls.clear()
    m = evaluate(fake, GOLD, latency_messages=0)
    assert fake.calls == [6] and m["latency_ms_p50"] is None and m["latency_ms_p99"] is None


def test_without_oos_rows_the_oos_figures_are_none_and_in_scope_is_everything() -> None:
    rows = [r for r in GOLD if r[1] != "oos"]
    m = evaluate(FakeClassifier(), rows)
    assert m["accuracy"] == m["in_scope_accuracy"] == pytest.approx(2 / 4)
    assert m["oos_recall"] is None and m["oos_precision"] is None


def test_oos_rows_but_no_oos_prediction_has_no_precision_and_all_oos_has_no_in_scope() -> None:
    m = evaluate(FakeClassifier(), [("t1", "a"), ("t5", "oos")])
    assert m["oos_recall"] == 0.0 and m["oos_precision"] is None
    m = evaluate(FakeClassifier(), [("t4", "oos"), ("t5", "oos")])
    assert m["in_scope_accuracy"] is None and m["accuracy"] == 0.5 and m["oos_precision"] == 1.0


def test_unknown_gold_labels_count_as_errors_and_empty_sets_are_refused() -> None:
    m = evaluate(FakeClassifier(), [("t1", "a"), ("t3", "brand_new")])
    assert m["accuracy"] == 0.5
    assert m["ece"] == pytest.approx((0.1 + 0.8) / 2)
    with pytest.raises(ModelError, match="no examples"):
        evaluate(FakeClassifier(), [])


def test_format_metrics_shows_percentages_and_na() -> None:
    m = evaluate(FakeClassifier(), [r for r in GOLD if r[1] != "oos"], latency_messages=0)
    text = format_metrics(m)
    assert "accuracy           50.00 %" in text
    assert "oos_recall         n/a" in text and "latency_ms_p99     n/a" in text
    assert len(text.splitlines()) == 8
