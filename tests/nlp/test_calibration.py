"""Temperature scaling, ECE, softmax and the stratified split (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.classifier import expected_calibration_error, fit_temperature, negative_log_likelihood, softmax
from nlp.training import stratified_split


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(4000, 5))
    probs = softmax(logits / 2.0)
    targets = np.array([rng.choice(5, p=p) for p in probs])
    t = fit_temperature(logits=logits, targets=targets)
    assert t == pytest.approx(2.0, rel=0.08)
    assert negative_log_likelihood(logits=logits, targets=targets, temperature=t) < negative_log_likelihood(
        logits=logits, targets=targets, temperature=1.0)


def test_fit_temperature_without_examples_is_one() -> None:
    assert fit_temperature(logits=np.zeros((0, 3)), targets=np.zeros(0, dtype=int)) == 1.0


def test_ece_by_hand() -> None:
    # two examples at confidence 0.9 (one right, one wrong) -> one bin, |0.5 - 0.9| = 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(probs=probs, targets=np.array([0, 1])) == pytest.approx(0.4)
    # perfectly confident and right -> 0
    assert expected_calibration_error(probs=np.array([[1.0, 0.0]]), targets=np.array([0])) == 0.0


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]]))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0)
    assert np.allclose(p[1], 1 / 3)


def test_stratified_split_keeps_singletons_in_train_and_is_seeded() -> None:
    examples = [(f"a{i}", "a") for i in range(10)] + [(f"b{i}", "b") for i in range(5)] + [("c0", "c")]
    train, val = stratified_split(examples, val_fraction=0.2, seed=13)
    assert ("c0", "c") in train and all(label != "c" for _, label in val)
    assert sorted(label for _, label in val) == ["a", "a", "b"]
    assert sorted(train + val) == sorted(examples)
    assert (train, val) == stratified_split(examples, val_fraction=0.2, seed=13)
    assert stratified_split(examples, val_fraction=0.2, seed=14)[1] != val


def test_stratified_split_with_two_examples_puts_one_in_each() -> None:
    train, val = stratified_split([("x", "a"), ("y", "a"), ("z", "b")], seed=1)
    assert len(val) == 1 and val[0][1] == "a"
    assert len(train) == 2


def test_each_base_model_gets_its_own_default_hyperparameters() -> None:
    from nlp.training import (
        E5_HYPERPARAMETERS,
        MINILM_HYPERPARAMETERS,
        default_hyperparameters,
        estimate_training_seconds,
    )

    assert default_hyperparameters("multilingual-e5-small") == E5_HYPERPARAMETERS
    assert default_hyperparameters("E5") == E5_HYPERPARAMETERS
    assert default_hyperparameters("all-MiniLM-L6-v2") == MINILM_HYPERPARAMETERS
    assert default_hyperparameters("/some/local/model") == MINILM_HYPERPARAMETERS
    assert (E5_HYPERPARAMETERS.epochs, E5_HYPERPARAMETERS.lora_lr, E5_HYPERPARAMETERS.warmup_fraction) == (
        8, 1e-3, 0.1)
    assert MINILM_HYPERPARAMETERS.warmup_fraction == 0.0
    # 1000 examples: MiniLM 6 epochs x 0.006 s + 5 s; e5 8 epochs, 2.2 times the cost per example
    assert estimate_training_seconds(n_examples=1000, base_model="minilm") == 41
    assert estimate_training_seconds(n_examples=1000, base_model="e5") == 111


def test_linear_probe_separates_separable_classes_whatever_the_feature_scale() -> None:
    from nlp.training import fit_linear_probe

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 16)) * 3.0
    targets = np.repeat(np.arange(4), 30)
    features = (centres[targets] + rng.normal(scale=0.5, size=(120, 16))).astype(np.float32)
    weights = np.ones(4, dtype=np.float32)
    for scale in (1.0, 250.0):
        w, b = fit_linear_probe(features=features * scale, targets=targets, class_weights=weights)
        assert tuple(w.shape) == (4, 16) and tuple(b.shape) == (4,)
        logits = (features * scale) @ w.numpy().T + b.numpy()
        assert (logits.argmax(axis=1) == targets).mean() == 1.0


def test_linear_probe_class_weights_move_the_boundary_towards_the_light_class() -> None:
    from nlp.training import fit_linear_probe

    # one feature, overlapping classes: weighting class 1 up must predict class 1 for more points
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(-1, 1, 200), rng.normal(1, 1, 200)]).astype(np.float32)[:, None]
    y = np.repeat([0, 1], 200)
    shares = []
    for w1 in (1.0, 5.0):
        w, b = fit_linear_probe(features=x, targets=y, class_weights=np.array([1.0, w1], dtype=np.float32))
        shares.append(float(((x @ w.numpy().T + b.numpy()).argmax(axis=1) == 1).mean()))
    assert 0.4 < shares[0] < 0.6
    assert shares[1] > shares[0] + 0.1


def test_fit_temperature_does_not_sharpen_a_perfect_validation_set_to_certainty() -> None:
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.1, 0.0, 1.5]])
    targets = np.array([0, 1, 2])  # all right: the NLL falls all the way to T -> 0
    assert fit_temperature(logits=logits, targets=targets) == 1.0
    wrong = np.array([0, 1, 0])  # one wrong: a real optimum inside the bounds
    assert 0.05 < fit_temperature(logits=logits, targets=wrong) < 20.0
