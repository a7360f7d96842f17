"""Serving the intent model through ONNX Runtime: same predictions as PyTorch, a cache that stays honest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import nlp.onnx_runtime
from bot.errors import ModelError
from nlp.classifier import HEAD_FILE, load_intent_model
from nlp.onnx_runtime import ONNX_DIR, ONNX_FILE, STAMP_FILE
from nlp.registry import IntentModelRegistry
from nlp.seed import load_seed_utterances
from nlp.training import TrainResult, train_intent_model

pytestmark = pytest.mark.real_model

BASE = "all-MiniLM-L6-v2"
LABELS = ("greeting", "thanks", "find_event", "find_member")
LABELS_SORTED = tuple(sorted(LABELS))  # the model's index order


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    rows = load_seed_utterances(languages=("en",))
    examples = [pair for label in LABELS for pair in [r for r in rows if r[1] == label][:8]]
    return train_intent_model(examples=examples, base_model=BASE, out_dir=tmp_path_factory.mktemp("m") / "m",
                              epochs=1, progress=False)


def _texts() -> list[str]:
    zh = [t for t, _ in load_seed_utterances(languages=("zh",))][:20]
    return zh + ["hello there", "thanks a lot!", "any events on friday?", "who knows about pricing?",
                 "a much longer message about many different things that goes on and on " * 3]


def test_onnx_gives_the_same_logits_and_predictions_as_torch(trained: TrainResult, tmp_path: Path) -> None:
    model_dir = shutil.copytree(trained.path, tmp_path / "m")
    clf = load_intent_model(model_dir)
    texts = _texts()
    torch_logits = clf.logits(texts)
    assert clf.runtime == "torch"
    assert clf.use_runtime("onnx") == "onnx"
    assert (model_dir / ONNX_DIR / ONNX_FILE).is_file() and (model_dir / ONNX_DIR / STAMP_FILE).is_file()
    onnx_logits = clf.logits(texts)
    assert onnx_logits.shape == (len(texts), len(LABELS))
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    assert [p.intent for p in clf.predict(texts)] == [LABELS_SORTED[i] for i in torch_logits.argmax(axis=1)]
    assert clf.use_runtime("torch") == "torch"
    np.testing.assert_allclose(clf.logits(texts), torch_logits, atol=1e-6)



def test_the_export_is_reused_and_redone_when_the_model_files_change(trained: TrainResult,
                                                                     tmp_path: Path) -> None:
    model_dir = shutil.copytree(trained.path, tmp_path / "m")
    clf = load_intent_model(model_dir)
    clf.use_runtime("onnx")
    onnx_file = model_dir / ONNX_DIR / ONNX_FILE
    os.utime(onnx_file, (1_000_000, 1_000_000))
    load_intent_model(model_dir).use_runtime("onnx")
    assert onnx_file.stat().st_mtime == 1_000_000  # fresh stamp: reused
    head = model_dir / HEAD_FILE
    head.write_bytes(head.read_bytes())  # same bytes: still the same model
    load_intent_model(model_dir).use_runtime("onnx")
    assert onnx_file.stat().st_mtime == 1_000_000
    (model_dir / ONNX_DIR / STAMP_FILE).write_text('{"head.safetensors": "something else"}', encoding="utf-8")
    load_intent_model(model_dir).use_runtime("onnx")
    assert onnx_file.stat().st_mtime != 1_000_000  # stale stamp: exported again


def test_auto_falls_back_to_torch_and_onnx_explains(trained: TrainResult, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = shutil.copytree(trained.path, tmp_path / "m")
    clf = load_intent_model(model_dir)

    def no_runtime(**_kwargs: object) -> None:
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(nlp.onnx_runtime, "onnx_logits_for", no_runtime)
    assert clf.use_runtime("auto") == "torch"
    with pytest.raises(ModelError, match="onnxruntime.*COMMUNITYBOT_INTENT_RUNTIME=torch"):
        clf.use_runtime("onnx")
    with pytest.raises(ModelError, match="Unknown inference runtime 'tensorrt'"):
        clf.use_runtime("tensorrt")
    assert clf.predict(["hello"])[0].intent in LABELS


def test_activating_a_version_drops_the_other_versions_exports(trained: TrainResult, tmp_path: Path) -> None:
    reg = IntentModelRegistry(tmp_path / "intent")
    v1 = reg.register(trained_dir=shutil.copytree(trained.path, tmp_path / "a"))
    reg.load_current().use_runtime("onnx")
    assert (reg.path_of(v1) / ONNX_DIR / ONNX_FILE).is_file()
    v2 = reg.register(trained_dir=shutil.copytree(trained.path, tmp_path / "b"))
    assert not (reg.path_of(v1) / ONNX_DIR).exists()
    assert reg.current_version() == v2
    assert reg.activate_and_load(v1).use_runtime("auto") == "onnx"
