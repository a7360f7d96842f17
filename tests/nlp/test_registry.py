"""The versioned model registry, the CURRENT pointer, and first-run preparation (ensure_intent_model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

import nlp.seed
from bot.db import session_scope
from bot.errors import ModelError
from bot.models import ModelVersion
from nlp.registry import CURRENT_FILE, IntentModelRegistry, ensure_intent_model, intent_models_root
from nlp.training import TrainResult, train_intent_model

pytestmark = pytest.mark.real_model

BASE = "all-MiniLM-L6-v2"
SMALL_LABELS = ("greeting", "thanks", "find_event")
_load_seeds = nlp.seed.load_seed_utterances


def _small_seeds(**_: object) -> list[tuple[str, str]]:
    """8 English seeds of each of 3 intents: a first-run training that takes a second or two."""
    rows = _load_seeds(languages=("en",))
    return [pair for label in SMALL_LABELS for pair in [r for r in rows if r[1] == label][:8]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_intent_model(examples=_small_seeds(), base_model=BASE,
                              out_dir=tmp_path_factory.mktemp("m") / "m", epochs=1, progress=False)


def _copy(trained: TrainResult, dest: Path) -> Path:
    shutil.copytree(trained.path, dest)
    return dest


def test_register_activate_and_current(trained: TrainResult, tmp_path: Path) -> None:
    reg = IntentModelRegistry(tmp_path / "intent")
    assert reg.versions() == [] and reg.current() is None
    v1 = reg.register(trained_dir=_copy(trained, tmp_path / "a"))
    v2 = reg.register(trained_dir=_copy(trained, tmp_path / "b"), activate=False)
    assert (v1, v2) == ("v0001", "v0002")
    assert reg.versions() == ["v0001", "v0002"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert reg.current() == tmp_path / "intent" / "v0001"
    assert (tmp_path / "intent" / CURRENT_FILE).read_text() == "v0001\n"
    assert reg.activate("v0002") == tmp_path / "intent" / "v0002"
    assert reg.current_version() == "v0002"
    assert reg.metadata("v0002")["base_model"] == BASE
    assert not [p.name for p in (tmp_path / "intent").iterdir() if p.name.startswith(".") and "tmp" in p.name]


def test_activate_refuses_unknown_or_mismatched_versions_and_keeps_current(trained: TrainResult,
                                                                           tmp_path: Path) -> None:
    reg = IntentModelRegistry(tmp_path / "intent")
    reg.register(trained_dir=_copy(trained, tmp_path / "a"))
    with pytest.raises(ModelError, match="no intent model version v0009"):
        reg.activate("v0009")
    with pytest.raises(ModelError, match="not an intent model version"):
        reg.activate("../etc")
    with pytest.raises(ModelError, match="retrain with `communitybot nlp train`"):
        reg.activate("v0001", expected_labels=(*SMALL_LABELS, "rsvp"))
    with pytest.raises(ModelError, match="trained on 'all-MiniLM-L6-v2'"):
        reg.activate("v0001", base_model="/other/model")
    assert reg.current_version() == "v0001"


def test_incomplete_directories_are_not_registered_or_listed(trained: TrainResult, tmp_path: Path) -> None:
    reg = IntentModelRegistry(tmp_path / "intent")
    half = tmp_path / "half"
    half.mkdir()
    (half / "labels.json").write_text('["a", "b"]')
    with pytest.raises(ModelError, match="incomplete"):
        reg.register(trained_dir=half)
    assert half.exists() and reg.versions() == []
    (tmp_path / "intent" / "v0001").mkdir(parents=True)  # a crashed reservation: empty, never listed
    assert reg.versions() == []
    assert reg.register(trained_dir=_copy(trained, tmp_path / "a")) == "v0002"
    (tmp_path / "intent" / CURRENT_FILE).write_text("v0007\n")  # dangling pointer
    assert reg.current() is None


@pytest.mark.sqlite_only  # trains a model; the model-version row is tested on both backends in tests/retrain
def test_ensure_trains_once_from_seeds_records_the_version_and_then_loads(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: Engine,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(nlp.seed, "load_seed_utterances", _small_seeds)
    data_dir = tmp_path / "data"
    clf = ensure_intent_model(data_dir=data_dir, base_model=BASE, progress=True, engine=engine)
    err = capsys.readouterr().err
    assert "Training the intent classifier from the shipped seed utterances (first run, ~" in err
    assert set(clf.labels) == set(SMALL_LABELS)
    reg = IntentModelRegistry(intent_models_root(data_dir))
    assert reg.versions() == ["v0001"] and reg.current_version() == "v0001"
    assert clf.path == reg.current()
    with session_scope(engine) as s:
        rows = s.exec(select(ModelVersion)).all()
    assert [(r.version, r.status, r.base_model, sorted(r.labels)) for r in rows] == [
        ("v0001", "active", BASE, sorted(SMALL_LABELS))]
    assert rows[0].path == str(reg.current()) and rows[0].metrics["val_examples"] > 0

    again = ensure_intent_model(data_dir=data_dir, base_model="minilm", progress=True, engine=engine)
    assert "Training" not in capsys.readouterr().err
    assert again.path == clf.path and reg.versions() == ["v0001"]


def test_ensure_keeps_the_last_good_model_when_training_fails(trained: TrainResult, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    reg = IntentModelRegistry(intent_models_root(data_dir))
    reg.register(trained_dir=_copy(trained, tmp_path / "a"))
    # a base model that cannot be loaded: the current model does not match it, and training on it fails
    clf = ensure_intent_model(data_dir=data_dir, base_model=str(tmp_path / "no-such-model"), progress=False)
    assert clf.path == reg.current() and reg.versions() == ["v0001"]
    assert sorted(p.name for p in reg.root.iterdir() if not p.name.startswith(".")) == [CURRENT_FILE, "v0001"]


def test_ensure_without_any_model_and_failing_training_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="Cannot load the base model"):
        ensure_intent_model(data_dir=tmp_path / "data", base_model=str(tmp_path / "missing"), progress=False)
    assert IntentModelRegistry(intent_models_root(tmp_path / "data")).current() is None
