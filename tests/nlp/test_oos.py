"""The out-of-scope decision: the threshold rule, and a small model trained with an ``oos`` class."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelError
from nlp.classifier import META_FILE, LoraIntentClassifier, load_intent_model
from nlp.seed import load_seed_utterances
from nlp.training import TrainResult, choose_oos_threshold, train_intent_model

A, OOS = 0, 2


def _rows(in_conf: np.ndarray, oos_conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-scope rows right (argmax A = target A), out-of-scope rows wrongly argmax A; 3 classes."""
    conf = np.concatenate([in_conf, oos_conf])
    probs = np.stack([conf, (1 - conf) / 2, (1 - conf) / 2], axis=1)
    targets = np.array([A] * len(in_conf) + [OOS] * len(oos_conf))
    return probs, targets


def test_the_threshold_buys_the_most_oos_recall_for_at_most_its_budget_of_in_scope_accuracy() -> None:
    probs, targets = _rows(np.linspace(0.5, 0.99, 100), np.array([0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.6,
                                                                  0.65, 0.7, 0.75]))
    t, stats = choose_oos_threshold(probs=probs, targets=targets, oos_index=OOS, max_in_scope_drop=0.01)
    # losing the single in-scope row at 0.50 (1 point) also catches the out-of-scope row at 0.50
    assert t == pytest.approx((0.5 + 0.5 + 0.49 / 99) / 2)
    assert stats == {"in_scope_accuracy": pytest.approx(0.99), "oos_recall": 0.5,
                     "in_scope_accuracy_no_threshold": 1.0, "oos_recall_no_threshold": 0.0}
    # with no accuracy to spend, the lowest threshold catching the four rows below every in-scope row
    t0, stats0 = choose_oos_threshold(probs=probs, targets=targets, oos_index=OOS, max_in_scope_drop=0.0)
    assert t0 == pytest.approx(0.475)
    assert stats0["oos_recall"] == 0.4 and stats0["in_scope_accuracy"] == 1.0
    # the default budget, half a point, cannot pay for one row in a hundred
    assert choose_oos_threshold(probs=probs, targets=targets, oos_index=OOS)[0] == pytest.approx(0.475)


def test_no_threshold_is_needed_when_the_oos_class_already_catches_everything() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    t, stats = choose_oos_threshold(probs=probs, targets=np.array([A, OOS, OOS]), oos_index=OOS)
    assert t == 0.0 and stats["oos_recall"] == 1.0 and stats["in_scope_accuracy"] == 1.0


def test_without_oos_or_in_scope_rows_there_is_no_threshold() -> None:
    probs, targets = _rows(np.array([0.6, 0.7]), np.array([]))
    t, stats = choose_oos_threshold(probs=probs, targets=targets, oos_index=OOS)
    assert t is None and stats["oos_recall"] is None and stats["in_scope_accuracy"] == 1.0
    probs, targets = _rows(np.array([]), np.array([0.6, 0.7]))
    t, stats = choose_oos_threshold(probs=probs, targets=targets, oos_index=OOS)
    assert t is None and stats["in_scope_accuracy"] is None and stats["oos_recall"] == 0.0


# ---------------------------------------------------------------- a small real model with an "oos" class
BASE = "all-MiniLM-L6-v2"
IN_SCOPE = ("greeting", "thanks", "find_event")


@pytest.fixture(scope="module")
def with_oos(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    rows = load_seed_utterances(languages=("en",))
    examples = [pair for label in IN_SCOPE for pair in [r for r in rows if r[1] == label][:10]]
    examples += [(text, "oos") for text, label in rows if label == "out_of_scope"][:10]
    return train_intent_model(examples=examples, base_model=BASE, out_dir=tmp_path_factory.mktemp("o") / "m",
                              epochs=3, seed=13, progress=False)


@pytest.mark.real_model
def test_oos_is_trained_as_a_class_and_its_threshold_is_saved_and_reloaded(with_oos: TrainResult) -> None:
    assert with_oos.labels == ("find_event", "greeting", "oos", "thanks")
    t = with_oos.metrics["oos_threshold"]
    assert t is not None and 0.0 <= t < 1.0
    assert with_oos.classifier.oos_threshold == t
    meta = json.loads((with_oos.path / META_FILE).read_text(encoding="utf-8"))
    assert meta["oos_threshold"] == t and meta["oos_label"] == "oos"
    assert meta["metrics"]["val_oos_recall"] >= meta["metrics"]["val_oos_recall_no_threshold"]
    assert (meta["metrics"]["val_in_scope_accuracy"]
            >= meta["metrics"]["val_in_scope_accuracy_no_threshold"] - 0.01)
    assert load_intent_model(with_oos.path).oos_threshold == t


@pytest.mark.real_model
def test_below_the_threshold_predict_says_oos(with_oos: TrainResult, tmp_path: Path) -> None:
    texts = ["hello everyone", "thank you!", "any meetups next week?", "what is the capital of peru"]
    strict = tmp_path / "strict"
    shutil.copytree(with_oos.path, strict)
    meta = json.loads((strict / META_FILE).read_text(encoding="utf-8"))
    meta["oos_threshold"] = 1.0  # above every confidence short of a saturated 1.0: those become oos
    (strict / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    preds = load_intent_model(strict).predict(texts)
    confidences = [p.confidence for p in with_oos.classifier.predict(texts)]
    assert [p.intent for p in preds] == ["oos" if c < 1.0 else p.intent
                                         for c, p in zip(confidences, with_oos.classifier.predict(texts),
                                                         strict=True)]
    assert sum(p.intent == "oos" for p in preds) >= 3
    for p, c in zip(preds, confidences, strict=True):
        if c < 1.0:
            assert p.confidence == dict(p.ranking)["oos"]  # the oos label's own probability
    plain = with_oos.classifier.predict(texts)
    assert [p.intent for p in plain] == ["greeting", "thanks", "find_event", "oos"]
    assert all((p.intent, p.confidence) == p.ranking[0] for p in plain)  # confident: untouched


@pytest.mark.real_model
def test_bad_thresholds_are_refused(with_oos: TrainResult, tmp_path: Path) -> None:
    clf = with_oos.classifier
    with pytest.raises(ModelError, match=r"probability in \[0, 1\]"):
        LoraIntentClassifier(network=clf.network, tokenizer=None, labels=clf.labels, temperature=1.0,
                             base_model=BASE, oos_threshold=1.5)
    with pytest.raises(ModelError, match="needs the label 'oos'"):
        LoraIntentClassifier(network=clf.network, tokenizer=None, labels=("a", "b"), temperature=1.0,
                             base_model=BASE, oos_threshold=0.5)
    broken = tmp_path / "broken"
    shutil.copytree(with_oos.path, broken)
    meta = json.loads((broken / META_FILE).read_text(encoding="utf-8"))
    meta["oos_threshold"] = "high"
    (broken / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="threshold in .* is not a number"):
        load_intent_model(broken)
