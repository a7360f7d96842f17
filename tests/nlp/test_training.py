"""A small real training run on MiniLM: save, reload, new labels, mismatches (case N1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelError
from bot.ports import IntentClassifier
from nlp.classifier import HEAD_FILE, LABELS_FILE, LoraIntentClassifier, load_intent_model, save_intent_model
from nlp.seed import load_seed_utterances
from nlp.training import TrainResult, train_intent_model

pytestmark = pytest.mark.real_model

BASE = "all-MiniLM-L6-v2"
FIVE = ("find_member", "find_event", "rsvp", "greeting", "thanks")
PER_LABEL = 10

EXPECTED = {
    "who here knows about term sheets?": "find_member", "anyone building robots in shenzhen?": "find_member",
    "is there a meetup next week?": "find_event", "when is demo day": "find_event",
    "sign me up for saturday": "rsvp", "count me in for the dinner": "rsvp", "hello!": "greeting",
    "hey all": "greeting", "thanks so much": "thanks", "cheers, that helped": "thanks",
    "what's happening on friday?": "find_event", "any founders doing fintech?": "find_member",
    "I'll be there": "rsvp", "good morning": "greeting", "thank you!": "thanks",
    "events this weekend?": "find_event", "who can advise on hiring?": "find_member", "rsvp yes": "rsvp",
    "hi bot": "greeting", "who knows a good lawyer?": "find_member",
}
FIXED = list(EXPECTED)  # 20 utterances that are not in the seeds


def _examples(labels: tuple[str, ...], per_label: int = PER_LABEL) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for label in labels:
        out += [(t, lab) for t, lab in load_seed_utterances(languages=("en",)) if lab == label][:per_label]
    return out


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("five") / "model"
    return train_intent_model(examples=_examples(FIVE), base_model=BASE, out_dir=out, epochs=3, seed=13,
                              progress=False)


def test_training_saves_one_complete_unit(five: TrainResult) -> None:
    files = sorted(p.relative_to(five.path).as_posix() for p in five.path.rglob("*") if p.is_file())
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "head.safetensors",
            "labels.json", "meta.json"} <= set(files)
    assert json.loads((five.path / LABELS_FILE).read_text()) == list(five.labels) == sorted(FIVE)
    meta = json.loads((five.path / "meta.json").read_text())
    assert meta["base_model"] == BASE and meta["seed"] == 13
    assert meta["temperature"] == pytest.approx(five.metrics["temperature"]) and meta["temperature"] > 0
    assert meta["example_counts"]["train"] + meta["example_counts"]["val"] == 5 * PER_LABEL
    assert meta["example_counts"]["val"] == 10  # 20 % of each of 5 labels with 10 examples
    assert meta["created_at"].endswith("+00:00")
    assert 0.0 <= five.metrics["val_accuracy"] <= 1.0 and five.metrics["epochs_run"] <= 3
    assert [p.name for p in five.path.parent.iterdir()] == ["model"]  # no temp or parked siblings left


def test_reload_in_a_fresh_object_gives_the_same_logits_and_labels(five: TrainResult) -> None:
    before = five.classifier.logits(FIXED)
    loaded = load_intent_model(five.path)
    assert loaded is not five.classifier and loaded.network is not five.classifier.network
    after = loaded.logits(FIXED)
    assert before.shape == after.shape == (20, 5)
    assert np.abs(before - after).max() < 1e-4
    assert [p.intent for p in loaded.predict(FIXED)] == [p.intent for p in five.classifier.predict(FIXED)]
    assert loaded.labels == five.labels and loaded.temperature == pytest.approx(five.classifier.temperature)


def test_predictions_are_calibrated_rankings(five: TrainResult) -> None:
    clf: IntentClassifier = five.classifier
    preds = clf.predict(FIXED)
    assert len(preds) == 20
    for p in preds:
        probs = [prob for _, prob in p.ranking]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-6)
        assert (p.intent, p.confidence) == p.ranking[0]
        assert {label for label, _ in p.ranking} == set(FIVE)
    assert clf.predict([]) == []
    # 40 training examples and 3 epochs already get most unseen utterances right (20/20 when measured)
    correct = sum(p.intent == EXPECTED[text] for text, p in zip(FIXED, preds, strict=True))
    assert correct >= 17


def test_same_seed_same_model(five: TrainResult, tmp_path: Path) -> None:
    again = train_intent_model(examples=_examples(FIVE), base_model=BASE, out_dir=tmp_path / "again",
                               epochs=3, seed=13, progress=False)
    assert np.abs(again.classifier.logits(FIXED) - five.classifier.logits(FIXED)).max() < 1e-5


def test_a_sixth_label_trains_and_loads_and_the_old_adapter_is_refused(five: TrainResult,
                                                                       tmp_path: Path) -> None:
    six = (*FIVE, "find_resource")
    result = train_intent_model(examples=_examples(six, per_label=6), base_model=BASE,
                                out_dir=tmp_path / "six", epochs=2, seed=13, progress=False)
    loaded = load_intent_model(result.path, expected_labels=six)
    assert set(loaded.labels) == set(six) and loaded.logits(FIXED[:3]).shape == (3, 6)
    with pytest.raises(ModelError) as err:
        load_intent_model(five.path, expected_labels=six)
    message = err.value.user_message
    assert "knows 5 labels but 6 are expected" in message
    assert "missing: ['find_resource']" in message
    assert "communitybot nlp train" in message


def test_a_label_map_that_does_not_fit_the_head_is_refused(five: TrainResult, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(five.path, broken)
    (broken / LABELS_FILE).write_text(json.dumps([*five.labels, "find_resource"]))
    with pytest.raises(ModelError, match=r"head in .* has 5 outputs but labels.json lists 6 labels"):
        load_intent_model(broken)


def test_missing_files_and_wrong_base_model_are_refused(five: TrainResult, tmp_path: Path) -> None:
    broken = tmp_path / "nohead"
    shutil.copytree(five.path, broken)
    (broken / HEAD_FILE).unlink()
    with pytest.raises(ModelError, match=r"incomplete \(missing head.safetensors\)"):
        load_intent_model(broken)
    with pytest.raises(ModelError, match="No intent model at"):
        load_intent_model(tmp_path / "nothing")
    with pytest.raises(ModelError, match="trained on base model 'all-MiniLM-L6-v2'"):
        load_intent_model(five.path, base_model="/some/other/model")
    assert isinstance(load_intent_model(five.path, base_model="minilm"), LoraIntentClassifier)


def test_saving_over_an_existing_model_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "model"
    first = train_intent_model(examples=_examples(FIVE[:2], per_label=4), base_model=BASE, out_dir=out,
                               epochs=1, progress=False)
    second = train_intent_model(examples=_examples(FIVE[2:], per_label=4), base_model=BASE, out_dir=out,
                                epochs=1, progress=False)
    assert first.path == second.path == out
    assert load_intent_model(out).labels == tuple(sorted(FIVE[2:]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_bad_training_input_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="at least two intents"):
        train_intent_model(examples=[("hi", "greeting"), ("hey", "greeting")], base_model=BASE,
                           out_dir=tmp_path / "m", progress=False)
    with pytest.raises(ModelError, match="no training examples"):
        train_intent_model(examples=[("hi", "greeting"), ("thx", "thanks")], base_model=BASE,
                           out_dir=tmp_path / "m", val_examples=[("yo", "rsvp")], progress=False)
    assert not (tmp_path / "m").exists()


def test_a_failed_save_leaves_the_previous_model_intact(five: TrainResult, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    target = tmp_path / "model"
    shutil.copytree(five.path, target)
    before = (target / HEAD_FILE).read_bytes()

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(ModelError, match="Cannot save the intent model to .*No space left on device"):
        save_intent_model(classifier=five.classifier, out_dir=target)
    assert (target / HEAD_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert load_intent_model(target).labels == five.labels


def test_the_linear_probe_is_epoch_zero_and_fine_tuning_must_beat_it(five: TrainResult) -> None:
    history = five.metrics["history"]
    assert [h["epoch"] for h in history] == list(range(len(history)))
    assert history[0]["train_loss"] is None and 0.0 <= history[0]["val_accuracy"] <= 1.0
    assert five.metrics["epochs_run"] == len(history) - 1
    assert five.metrics["linear_probe_seconds"] > 0
    best = history[five.metrics["best_epoch"]]
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in history)
    assert five.metrics["val_accuracy"] == pytest.approx(best["val_accuracy"])
