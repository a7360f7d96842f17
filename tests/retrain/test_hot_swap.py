"""Hot swap: the serving classifier follows the database's active version, promoted or rolled back by
another process, without pausing requests; in-flight predictions finish on the model they started with.

The models are copies of the session's MiniLM baseline registered as ``v0001`` and ``v0002`` (the same
weights: what is checked is which version serves).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session, select

from bot.db import session_scope
from bot.models import ModelVersion
from bot.ports import IntentPrediction
from tests.retrain.conftest import Deployment, wait_for

if TYPE_CHECKING:
    from nlp.serving import ServingClassifier

pytestmark = pytest.mark.real_model

SWITCH = """
import sys
import sqlalchemy as sa
engine = sa.create_engine(sys.argv[1])
with engine.begin() as db:
    db.execute(sa.text("UPDATE modelversion SET status = "
                       "CASE WHEN version = :v THEN 'active' ELSE 'retired' END"), {"v": sys.argv[2]})
"""


def switch_in_another_process(dep: Deployment, version: str) -> None:
    """Make ``version`` the database's active one from another process (as a rollback would), in plain SQL
    on the deployment's database (SQLite or PostgreSQL)."""
    url = dep.settings.resolved_database_url()
    subprocess.run([sys.executable, "-c", SWITCH, url, version], check=True, timeout=60)


class Clock:
    """A settable monotonic clock, in seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serving_for(dep: Deployment, *, clock: Clock, check_every: float = 2.0,
                background: bool = False) -> ServingClassifier:
    """A serving classifier on ``v0001`` that looks at the database every ``check_every`` of ``clock``."""
    from nlp.classifier import load_intent_model
    from nlp.serving import ServingClassifier

    return ServingClassifier(classifier=load_intent_model(dep.registry.path_of("v0001")), version="v0001",
                             engine=dep.engine, registry=dep.registry, base_model=dep.settings.base_model,
                             check_every=check_every, background=background, clock=clock)


def test_a_version_promoted_by_another_process_serves_within_check_every_and_rolls_back(
        deployment: Deployment) -> None:
    dep = deployment
    assert dep.add_copy_of(dep.registry.path_of("v0001"), activate_in_db=False) == "v0002"
    clock = Clock()
    serving = serving_for(dep, clock=clock, check_every=2.0)
    first = serving.current
    assert serving.predict(["hello everyone"])[0].intent == "greeting" and serving.version == "v0001"

    switch_in_another_process(dep, "v0002")
    clock.now += 1.9
    serving.predict(["hello everyone"])
    assert serving.version == "v0001"  # not looked yet: at most one query per check_every
    clock.now += 0.1
    assert serving.predict(["hello everyone"])[0].intent == "greeting"
    assert serving.version == "v0002" and serving.current is not first
    assert dep.registry.current_version() == "v0001"  # CURRENT did not move: serving follows the database

    switch_in_another_process(dep, "v0001")  # a rollback, in the database only
    clock.now += 2.0
    serving.predict(["thanks a lot"])
    assert serving.version == "v0001" and serving.current is not first  # loaded again


def test_in_flight_predictions_finish_on_the_old_model(deployment: Deployment,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    dep = deployment
    dep.add_copy_of(dep.registry.path_of("v0001"), activate_in_db=False)
    clock = Clock()
    serving = serving_for(dep, clock=clock, check_every=3600.0, background=True)
    serving.refresh()  # the first look: nothing due for an hour now
    old = serving.current
    calls: list[str] = []
    release = threading.Event()
    real_predict = old.predict

    def slow_predict(texts: Sequence[str]) -> list[IntentPrediction]:
        calls.append("old")
        release.wait(30)
        return real_predict(texts)

    monkeypatch.setattr(old, "predict", slow_predict)
    answers: list[list[IntentPrediction]] = []
    request = threading.Thread(target=lambda: answers.append(serving.predict(["hello everyone"])))
    request.start()
    wait_for(lambda: calls, timeout=10)  # the request is inside the old model now

    with session_scope(dep.engine) as s:  # promoted (by whoever)
        for row in s.exec(select(ModelVersion)).all():
            row.status = "active" if row.version == "v0002" else "retired"
            s.add(row)
    serving.refresh(force=True)
    serving.wait_for_load(60)
    assert serving.version == "v0002" and serving.current is not old  # new requests get the new model
    release.set()
    request.join(30)
    assert answers and answers[0][0].intent == "greeting" and calls == ["old"]  # finished on the old one
    serving.predict(["hello again"])
    assert calls == ["old"]


def test_a_version_that_does_not_load_is_logged_and_the_old_one_keeps_serving(
        deployment: Deployment, caplog: pytest.LogCaptureFixture) -> None:
    from nlp.registry import record_model_version

    dep = deployment
    clock = Clock()
    serving = serving_for(dep, clock=clock, check_every=2.0)
    record_model_version(engine=dep.engine, version="v0009", path=dep.settings.data_dir / "nowhere",
                         base_model=dep.settings.base_model, labels=["a", "b"], metrics={})
    caplog.set_level(logging.ERROR, logger="nlp.serving")
    assert serving.predict(["hello everyone"])[0].intent == "greeting"
    assert serving.version == "v0001"
    assert [r.getMessage() for r in caplog.records] == [
        "intent model v0009 cannot serve (There is no intent model version v0009 (available: v0001).); "
        "v0001 keeps serving"]
    clock.now += 10.0
    serving.predict(["hello everyone"])
    assert len(caplog.records) == 1  # not tried again at every look
    clock.now += 60.0
    serving.predict(["hello everyone"])
    assert len(caplog.records) == 2 and serving.version == "v0001"  # tried again after retry_after


def test_load_classifier_serves_the_database_version_and_records_the_first_one(
        deployment: Deployment) -> None:
    from bot.app import load_classifier
    from nlp.serving import ServingClassifier

    dep = deployment
    settings = dep.settings.model_copy(update={"intent_runtime": "torch"})
    dep.add_copy_of(dep.registry.path_of("v0001"), activate_in_db=False)
    switch_in_another_process(dep, "v0002")  # a rollback or promotion recorded while this process was down
    serving = load_classifier(settings, engine=dep.engine, progress=False)
    assert isinstance(serving, ServingClassifier)
    assert serving.version == "v0002" and dep.registry.current_version() == "v0001"
    assert serving.current.runtime == "torch" and serving.predict([]) == []

    with session_scope(dep.engine) as s:  # a database that never heard of any version
        for row in s.exec(select(ModelVersion)).all():
            s.delete(row)
    serving = load_classifier(settings, engine=dep.engine, progress=False)
    assert serving.version == "v0001"  # type: ignore[attr-defined]
    with Session(dep.engine) as s:
        rows = s.exec(select(ModelVersion.version, ModelVersion.status)).all()
    assert [tuple(r) for r in rows] == [("v0001", "active")]  # now the database names what serves


def test_a_background_swap_never_stops_answering(deployment: Deployment) -> None:
    from nlp.serving import open_serving_classifier

    dep = deployment
    dep.add_copy_of(dep.registry.path_of("v0001"), activate_in_db=False)
    serving = open_serving_classifier(data_dir=dep.settings.data_dir, base_model=dep.settings.base_model,
                                      engine=dep.engine, runtime="torch", progress=False, check_every=0.5)
    assert serving.version == "v0001"
    switch_in_another_process(dep, "v0002")
    started, answered = time.monotonic(), 0
    while serving.version != "v0002":
        assert serving.predict(["hello everyone"])[0].intent == "greeting"  # answered meanwhile
        answered += 1
        assert time.monotonic() - started < 60, "the new version was not served within a minute"
        time.sleep(0.05)
    print(f"switched after {time.monotonic() - started:.2f} s, {answered} predictions served meanwhile")
