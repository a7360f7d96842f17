"""Issue 8 end to end through the console adapter, with the real worker process and the real gate.

The deployment serves the weak MiniLM baseline (``v0001``, see ``conftest``). The console admin labels a
message the baseline gets wrong (and a few paraphrases), asks ``/bot retrain``; the worker process trains
and promotes a new version; the same console (the same process's serving classifier, no restart) then
answers the message correctly. A deliberately bad label set (greetings labelled ``find_event``) is refused
by the gate and the old version keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

import bot.app
from adapters.console import ConsoleAdapter
from bot.app import App, build_app
from bot.models import ModelVersion, TrainingRun
from nlp.retrain import RetrainConfig
from nlp.retrain_worker import SubprocessRetrainer
from tests.retrain.conftest import Deployment, wait_for

# training-heavy (two retrainings per test): SQLite only; the storage of retraining is tested on both
# backends by the faster tests of this folder
pytestmark = [pytest.mark.real_model, pytest.mark.sqlite_only]

E2E = RetrainConfig(epochs=4, seed_languages=("en",), max_intent_drop=0.1)
"""Runs on every English training seed (about 650) for 4 epochs: tens of seconds in the worker, and far
stronger than the 4-seeds-per-intent baseline, so the gate compares a real improvement (the 10-seed
:data:`tests.retrain.conftest.FAST` runs were measured refused on 3-utterance noise after 8 labels)."""

#: Ways members ask for resources; the baseline (4 seeds per intent) gets some of them wrong.
RESOURCE_QUESTIONS = [
    "is there a template for a cap table somewhere",
    "where can I download the pitch deck examples",
    "any docs on how to set up payroll in singapore",
    "link to the guide about cloud credits please",
    "does anyone have a checklist for incorporating in delaware",
    "share the spreadsheet for runway planning",
    "got a sample employment contract I could reuse",
    "the notion page with fundraising resources, where is it",
]


@pytest.fixture
def console(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ConsoleAdapter, App]]:
    from tests.core.fakes import FakeMatcher

    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: FakeMatcher())
    settings = deployment.settings.model_copy(update={"base_model": "all-MiniLM-L6-v2"})
    app = build_app(settings, progress=False, engine=deployment.engine,
                    retrainer=lambda: SubprocessRetrainer(settings, config=E2E, heartbeat_seconds=1.0))
    yield ConsoleAdapter(handle=app.handle, community="default"), app


def _finished(deployment: Deployment, run_id: int) -> TrainingRun | None:
    run = deployment.get_run(run_id)
    return run if run.active is None else None


def _retrain(chat: ConsoleAdapter, deployment: Deployment) -> TrainingRun:
    reply = chat.run_once("/bot retrain").text
    with Session(deployment.engine) as s:
        run = s.exec(select(TrainingRun).order_by(TrainingRun.id.desc())).first()  # type: ignore[union-attr]
    assert run is not None and f"#{run.id}" in reply, reply
    finished = wait_for(lambda: _finished(deployment, run.id or 0), timeout=600, every=1.0)
    assert isinstance(finished, TrainingRun)
    return finished


def _active(deployment: Deployment) -> str:
    with Session(deployment.engine) as s:
        return s.exec(select(ModelVersion.version).where(ModelVersion.status == "active")).one()


def test_labels_and_a_retrain_from_chat_fix_a_misclassified_message(
    console: tuple[ConsoleAdapter, App], deployment: Deployment
) -> None:
    chat, _ = console
    wrong = [q for q in RESOURCE_QUESTIONS if chat.run_once(q).intent != "find_resource"]
    assert wrong, "the baseline answers every resource question right; pick harder ones"
    target = wrong[0]
    for question in RESOURCE_QUESTIONS:
        assert "find_resource" in chat.run_once(f'/bot label "{question}" find_resource').text
    run = _retrain(chat, deployment)
    assert run.status == "promoted", run.report.get("reason", run.error)
    assert _active(deployment) == run.version != "v0001"
    # the same process switches to the promoted version within seconds (no restart)
    wait_for(lambda: chat.run_once(target).intent == "find_resource", timeout=30, every=1.0)
    status = chat.run_once("/bot status").text
    assert run.version in status


def test_a_bad_label_set_is_refused_and_the_old_model_keeps_serving(
    console: tuple[ConsoleAdapter, App], deployment: Deployment
) -> None:
    chat, _ = console
    assert chat.run_once("hello everyone").intent == "greeting"
    greetings = [f"{hello} {who}" for hello in ("hello", "hi", "hey", "good morning", "greetings")
                 for who in ("everyone", "all", "folks", "team", "friends", "people", "there", "guys")]
    for text in greetings:
        chat.run_once(f'/bot label "{text}" find_event')
    run = _retrain(chat, deployment)
    assert (run.status, run.report["reason_code"], run.report["worst_intent"]) == (
        "refused", "intent_drop", "greeting")
    assert _active(deployment) == "v0001"
    assert chat.run_once("hello everyone").intent == "greeting"
