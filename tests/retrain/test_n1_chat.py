"""Case N1 of real_world_cases.md through the chat path: admins add an intent and retrain from chat; a
restarted process predicts the same labels and probabilities; an old adapter spliced under the new label
map is refused with a clear message while the bot keeps serving the last good model.

The deployment serves the MiniLM baseline ``v0001``; ``/bot label ... --new`` adds ``job_post`` and
``/bot retrain`` trains ``v0002`` in the worker process (:data:`tests.retrain.test_end_to_end.E2E`).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sqlmodel import Session, select

import bot.app
from adapters.console import ConsoleAdapter
from bot.app import App, build_app
from bot.models import ModelVersion
from nlp.classifier import ADAPTER_DIR, HEAD_FILE
from nlp.registry import record_model_version
from nlp.retrain_worker import SubprocessRetrainer
from tests.retrain.conftest import Deployment, wait_for
from tests.retrain.test_end_to_end import E2E, _retrain

# training-heavy (several retrainings): SQLite only; the storage of retraining is tested on both
# backends by the faster tests of this folder
pytestmark = [pytest.mark.real_model, pytest.mark.sqlite_only]

JOB_POSTS = [
    "we are hiring a senior backend engineer in berlin, remote ok",
    "job opening: founding designer at an early stage fintech",
    "hiring: part-time bookkeeper for a seed stage startup",
    "looking for a full-stack developer to join our team, equity offered",
    "our startup is hiring a growth marketer, dm me for details",
    "open role: head of sales for a b2b saas company in london",
    "we have a paid internship for a data analyst this summer",
    "position available: mobile engineer (react native), salary and options",
]
#: 20 fixed utterances predicted before and after the restart.
FIXED = [
    "who knows about angel rounds", "any events next week", "I'll come to the meetup", "hello everyone",
    "thanks a lot", "where is the pitch deck template", "set my profile: I offer design", "what can you do",
    "that answer was wrong", "what's the weather", "we're hiring a frontend developer, remote",
    "anyone done a seed round for hardware", "is there a list of accelerators", "count me in for friday",
    "hi bot", "much appreciated", "update my skills to python", "help", "tell me a joke",
    "job: product manager wanted at a health startup",
]


def _app(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> App:
    from tests.core.fakes import FakeMatcher

    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: FakeMatcher())
    settings = deployment.settings.model_copy(update={"base_model": "all-MiniLM-L6-v2"})
    return build_app(settings, progress=False, engine=deployment.engine,
                     retrainer=lambda: SubprocessRetrainer(settings, config=E2E, heartbeat_seconds=1.0))


def _ranking(app: App) -> list[dict[str, float]]:
    return [dict(p.ranking) for p in app.classifier.predict(FIXED)]


def test_n1_new_intent_restart_and_a_mismatched_adapter_through_chat(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(deployment, monkeypatch)
    chat = ConsoleAdapter(handle=app.handle, community="default")
    refused = chat.run_once(f'/bot label "{JOB_POSTS[0]}" job_post').text
    assert "--new" in refused  # a new intent must be asked for explicitly
    for text in JOB_POSTS:
        assert "job_post" in chat.run_once(f'/bot label "{text}" job_post --new').text
    run = _retrain(chat, deployment)
    assert run.status == "promoted", run.report.get("reason", run.error)
    wait_for(lambda: "job_post" in app.classifier.labels, timeout=30, every=0.5)
    before = _ranking(app)
    assert "job_post" in before[10] and max(before[10], key=before[10].get) == "job_post"

    # "restart the process": a new app on the same data directory and database
    restarted = _app(deployment, monkeypatch)
    after = _ranking(restarted)
    assert [sorted(r) for r in after] == [sorted(r) for r in before]  # the same label map
    diffs = [abs(r[label] - b[label]) for r, b in zip(after, before, strict=True) for label in r]
    assert float(np.max(diffs)) < 1e-4

    # the baseline's adapter and head (one label fewer) spliced under the new label map
    good = run.version
    spliced = deployment.registry.root / "v0003"
    shutil.copytree(deployment.registry.path_of(good), spliced)
    old = deployment.registry.path_of("v0001")
    shutil.rmtree(spliced / ADAPTER_DIR)
    shutil.copytree(old / ADAPTER_DIR, spliced / ADAPTER_DIR)
    shutil.copy2(old / HEAD_FILE, spliced / HEAD_FILE)
    record_model_version(engine=deployment.engine, version="v0003", path=spliced,
                         base_model="all-MiniLM-L6-v2", labels=deployment.registry.metadata(good)["labels"],
                         metrics={}, status="retired")
    assert "v0003" in chat.run_once("/bot rollback v0003").text

    def refused() -> bool:
        app.classifier.predict(["hello"])  # requests go on; the serving classifier notices the change
        return _versions(deployment)["v0003"].status == "failed"

    wait_for(refused, timeout=60, every=0.5)
    rows = _versions(deployment)
    assert "outputs but labels.json lists" in rows["v0003"].metrics["load_error"]
    assert rows[good].status == "active"
    assert app.classifier.predict([JOB_POSTS[1]])[0].intent == "job_post"  # still the last good model
    assert good in chat.run_once("/bot status").text


def _versions(deployment: Deployment) -> dict[str, ModelVersion]:
    with Session(deployment.engine) as s:
        return {r.version: r for r in s.exec(select(ModelVersion)).all()}
