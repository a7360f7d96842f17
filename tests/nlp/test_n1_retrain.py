"""Case N1 — retrain, save, reload (docs: shared/cases/real_world_cases.md).

Retrain on 5 intents, save, restart the process, predict 20 fixed utterances; add a 6th intent, retrain,
reload; then try to load the old 5-label adapter into the 6-label setup. Expected: predictions after
reload equal those before saving (same labels, logits within 1e-4); the label map is stored with the
adapter; the 6-label model loads; the mismatched adapter is refused with a clear message while the bot
keeps serving the last good model.

Runs on the shipped MiniLM with 12 English seed utterances per intent, 5 epochs (two trainings of a
few seconds each).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from bot.errors import ModelError
from nlp.classifier import ADAPTER_DIR, HEAD_FILE, LABELS_FILE, META_FILE, LoraIntentClassifier
from nlp.registry import CURRENT_FILE, IntentModelRegistry
from nlp.seed import load_seed_utterances
from nlp.training import TrainResult

pytestmark = pytest.mark.real_model

BASE = "all-MiniLM-L6-v2"
FIVE = ("find_member", "find_event", "rsvp", "greeting", "thanks")
SIX = (*FIVE, "find_resource")
PER_LABEL = 12
EPOCHS = 5
ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {  # 20 fixed utterances, none of them in the seed files
    "who here has raised money from angels?": "find_member",
    "anyone working on developer tools?": "find_member",
    "is there a founder who knows about logistics?": "find_member",
    "who could help me with pricing?": "find_member",
    "what events are coming up?": "find_event",
    "is there a meetup this friday?": "find_event",
    "when does the hackathon start?": "find_event",
    "any workshops next month?": "find_event",
    "please sign me up for the hackathon": "rsvp",
    "I want to attend the founder dinner": "rsvp",
    "save me a seat at the workshop": "rsvp",
    "yes, I'm coming on friday": "rsvp",
    "hiya everybody": "greeting",
    "hi folks": "greeting",
    "good evening everyone": "greeting",
    "hey bot": "greeting",
    "thanks a bunch": "thanks",
    "thank you, very helpful": "thanks",
    "appreciate the help, cheers": "thanks",
    "great, thanks!": "thanks",
}
FIXED = list(EXPECTED)


def _examples(labels: tuple[str, ...]) -> list[tuple[str, str]]:
    rows = load_seed_utterances(languages=("en",))
    return [pair for label in labels for pair in [r for r in rows if r[1] == label][:PER_LABEL]]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> IntentModelRegistry:
    return IntentModelRegistry(tmp_path_factory.mktemp("data") / "models" / "intent")


@pytest.fixture(scope="module")
def five(registry: IntentModelRegistry) -> TrainResult:
    version, result = registry.train_new_version(examples=_examples(FIVE), base_model=BASE, epochs=EPOCHS,
                                                 seed=13, progress=False)
    assert version == "v0001"
    return result


@pytest.fixture(scope="module")
def six(registry: IntentModelRegistry, five: TrainResult) -> TrainResult:
    version, result = registry.train_new_version(examples=_examples(SIX), base_model=BASE, epochs=EPOCHS,
                                                 seed=13, progress=False)
    assert version == "v0002"
    return result


def test_the_five_intent_model_predicts_the_fixed_utterances(five: TrainResult) -> None:
    preds = five.classifier.predict(FIXED)
    got = {text: p.intent for text, p in zip(FIXED, preds, strict=True)}
    right = [text for text in FIXED if got[text] == EXPECTED[text]]
    # measured 19/20 on 12 seeds per intent: "yes, I'm coming on friday" reads as find_event
    assert len(right) >= 19, {t: got[t] for t in FIXED if t not in right}
    assert five.classifier.oos_threshold is None  # no "oos" label: no out-of-scope threshold


def test_a_restarted_process_predicts_the_same_labels_and_logits(five: TrainResult,
                                                                 registry: IntentModelRegistry) -> None:
    before = five.classifier.logits(FIXED)
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from nlp.registry import IntentModelRegistry\n"
        "clf = IntentModelRegistry(Path(sys.argv[1])).load_current()\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps({'labels': list(clf.labels), 'logits': clf.logits(texts).tolist(),\n"
        "                  'intents': [p.intent for p in clf.predict(texts)]}))\n"
    )
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(registry.root)], input=json.dumps(FIXED),
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert after["labels"] == list(five.labels) == sorted(FIVE)
    assert after["intents"] == [p.intent for p in five.classifier.predict(FIXED)]
    logits = np.array(after["logits"])
    assert logits.shape == before.shape == (20, 5)
    assert np.abs(logits - before).max() < 1e-4


def test_a_fresh_object_in_this_process_gives_the_same_logits(five: TrainResult,
                                                              registry: IntentModelRegistry) -> None:
    loaded = registry.load_current(expected_labels=FIVE, base_model=BASE)
    assert loaded is not five.classifier and loaded.network is not five.classifier.network
    assert np.abs(loaded.logits(FIXED) - five.classifier.logits(FIXED)).max() < 1e-4
    assert [p.intent for p in loaded.predict(FIXED)] == [p.intent for p in five.classifier.predict(FIXED)]
    assert loaded.temperature == pytest.approx(five.classifier.temperature)


def test_the_label_map_is_stored_with_the_adapter(five: TrainResult) -> None:
    path = five.path
    assert path.name == "v0001"
    for name in (f"{ADAPTER_DIR}/adapter_config.json", f"{ADAPTER_DIR}/adapter_model.safetensors",
                 HEAD_FILE, LABELS_FILE, META_FILE):
        assert (path / name).is_file(), name
    labels = json.loads((path / LABELS_FILE).read_text(encoding="utf-8"))
    assert labels == sorted(FIVE)
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    assert meta["labels"] == labels and meta["base_model"] == BASE
    assert meta["oos_threshold"] is None and meta["oos_label"] == "oos"
    head = load_file(str(path / HEAD_FILE))
    assert tuple(head["weight"].shape) == (5, 384) and tuple(head["bias"].shape) == (5,)


def test_a_sixth_intent_retrains_and_the_six_label_model_loads(six: TrainResult,
                                                               registry: IntentModelRegistry) -> None:
    assert registry.versions() == ["v0001", "v0002"] and registry.current_version() == "v0002"
    loaded = registry.load_current(expected_labels=SIX)
    assert loaded.labels == tuple(sorted(SIX))
    assert loaded.logits(FIXED).shape == (20, 6)
    assert np.abs(loaded.logits(FIXED) - six.classifier.logits(FIXED)).max() < 1e-4
    new = loaded.predict(["is there a template for a pitch deck?", "any guide to hiring engineers in "
                          "shanghai?"])
    assert [p.intent for p in new] == ["find_resource", "find_resource"]
    correct = sum(p.intent == EXPECTED[t] for t, p in zip(FIXED, loaded.predict(FIXED), strict=True))
    assert correct >= 17  # the old intents survive the retrain (measured 18/20)


def test_the_old_five_label_adapter_is_refused_and_the_last_good_model_keeps_serving(
        six: TrainResult, registry: IntentModelRegistry) -> None:
    serving = registry.load_current(expected_labels=SIX)
    before = serving.logits(FIXED)
    with pytest.raises(ModelError) as err:
        registry.activate_and_load("v0001", expected_labels=SIX)
    message = err.value.user_message
    assert "knows 5 labels but 6 are expected" in message
    assert "missing: ['find_resource']" in message and "communitybot nlp train" in message
    assert (registry.root / CURRENT_FILE).read_text(encoding="utf-8") == "v0002\n"
    assert np.abs(serving.logits(FIXED) - before).max() == 0.0  # the served model is untouched
    assert registry.load_current(expected_labels=SIX).labels == tuple(sorted(SIX))


def test_an_old_adapter_and_head_spliced_under_a_six_label_map_are_refused(
        five: TrainResult, six: TrainResult, registry: IntentModelRegistry, tmp_path: Path) -> None:
    spliced = tmp_path / "spliced"
    shutil.copytree(six.path, spliced)
    shutil.rmtree(spliced / ADAPTER_DIR)
    shutil.copytree(five.path / ADAPTER_DIR, spliced / ADAPTER_DIR)
    shutil.copy2(five.path / HEAD_FILE, spliced / HEAD_FILE)
    version = registry.register(trained_dir=spliced, activate=False)
    assert version == "v0003" and registry.current_version() == "v0002"
    with pytest.raises(ModelError, match=r"head in .* has 5 outputs but labels.json lists 6 labels"):
        registry.activate_and_load(version)
    assert registry.current_version() == "v0002"
    serving = registry.load_current()
    assert isinstance(serving, LoraIntentClassifier) and len(serving.labels) == 6
    registry.activate_and_load("v0001")  # the old model itself still loads when asked for explicitly
    assert registry.current_version() == "v0001"
    registry.activate_and_load("v0002", expected_labels=SIX)
    assert registry.current_version() == "v0002"
