"""The retraining worker on a real MiniLM: promotion, refusal, dry runs, new intents, failures, a real kill.

Each run trains on :data:`tests.retrain.conftest.FAST` (100 English seeds + the labels, 3 epochs: seconds)
against a weaker baseline ``v0001`` and is judged on the 107 English golden utterances plus the labels.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.db import session_scope
from bot.models import ModelVersion, Notification, TrainingRun, TrainingRunStatus, utcnow
from nlp.retrain import RetrainConfig
from nlp.retrain_worker import (
    SubprocessRetrainer,
    _config,
    parse_args,
    reap_stale_runs,
    runs_dir,
    worker_alive,
)
from nlp.seed import GOLDEN_HELD_OUT
from tests.retrain.conftest import FAST, Deployment, wait_for

real_model = pytest.mark.real_model

GOOD_LABELS = [  # correct labels of utterances that are not in the seed files
    ("who in this group knows about supply chains in shenzhen?", "find_member"),
    ("is anyone here an expert on b2b pricing?", "find_member"),
    ("where can I find a template for an investor update?", "find_resource"),
    ("any good guides on hiring a first engineer?", "find_resource"),
    ("what's happening this weekend?", "find_event"),
    ("are there any meetups next week?", "find_event"),
    ("count me in for the demo night", "rsvp"),
    ("please add me to the attendee list for saturday", "rsvp"),
    ("hey there, good to be here", "greeting"),
    ("thanks so much, that helped", "thanks"),
    ("how do I use this bot?", "help"),
    ("update my profile: I can offer design reviews", "update_profile"),
    ("the last answer was not useful", "feedback"),
    ("what's the weather in paris tomorrow?", "out_of_scope"),
]
BAD_LABELS = [(f"{hello} {who}", "find_event")  # 40 greetings deliberately labelled as event questions
              for hello in ("hi", "hello", "hey", "good morning", "hiya", "greetings", "yo", "howdy")
              for who in ("everyone", "all", "team", "folks", "friends")]
JOB_POSTS = [  # a new intent an admin adds by labelling
    ("we're hiring a senior backend engineer, DM me", "job_post"),
    ("my startup is hiring a product designer", "job_post"),
    ("job opening: growth marketer at a fintech startup", "job_post"),
    ("we have an open role for a data scientist", "job_post"),
    ("looking to hire a full-stack developer, remote ok", "job_post"),
    ("hiring: head of sales for our seed-stage startup", "job_post"),
    ("our team is recruiting two ML engineers", "job_post"),
    ("open position for an operations lead in singapore", "job_post"),
    ("we're hiring interns for the summer", "job_post"),
    ("job post: frontend engineer, react, shanghai", "job_post"),
]


def active_version(dep: Deployment) -> str:
    with Session(dep.engine) as s:
        return s.exec(select(ModelVersion.version).where(ModelVersion.status == "active")).one()


def figures(report: dict[str, Any]) -> str:
    """The measured figures of a run, printed for the record (``pytest -s``)."""
    keys = ("decision", "reason", "accuracy_before", "accuracy_after", "golden_accuracy_before",
            "golden_accuracy_after", "labels_accuracy_before", "labels_accuracy_after", "seconds")
    deltas = {i: r["delta"] if r["delta"] is None else round(r["delta"], 3)
              for i, r in report["per_intent"].items()}
    return " ".join(f"{k}={report[k]}" for k in keys) + f" deltas={deltas}"


@real_model
def test_a_good_run_is_promoted_in_the_database_and_reported(deployment: Deployment) -> None:
    dep = deployment
    dep.label(GOOD_LABELS)
    run_id = dep.new_run()
    assert dep.run(run_id) == 0
    run = dep.get_run(run_id)
    report = run.report
    print(figures(report))
    assert run.status == TrainingRunStatus.PROMOTED and run.active is None and run.error == ""
    assert (run.previous_version, run.version) == ("v0001", "v0002") and run.pid == os.getpid()
    assert run.started_at and run.heartbeat_at and run.finished_at and run.finished_at >= run.started_at
    assert run.heartbeat_at > run.started_at  # the heartbeat thread beat while the run trained
    assert report["decision"] == "promoted" and report["reason_code"] == "ok"
    assert report["accuracy_after"] >= report["accuracy_before"]
    assert report["n_golden"] == 107 and report["n_recent_labels"] == len(GOOD_LABELS)
    assert report["n_train"] == 100 + len(GOOD_LABELS) and report["host"] == socket.gethostname()
    assert set(report["per_intent"]) == {label for _, label in GOOD_LABELS}
    # the database says so, and CURRENT follows
    assert active_version(dep) == "v0002" and dep.registry.current_version() == "v0002"
    with Session(dep.engine) as s:
        row = s.exec(select(ModelVersion).where(ModelVersion.version == "v0002")).one()
    assert row.metrics[GOLDEN_HELD_OUT] is True and row.metrics["gate"]["run_id"] == run_id
    # progress and the report went to the admin's conversation, in order, the picture attached
    notes = dep.notifications(run_id)
    assert list(notes) == ["started", "training", "evaluating", "result"]
    where = {(n.platform, n.conversation, n.kind) for n in notes.values()}
    assert where == {("console", "admin-dm", "retrain")}
    assert notes["training"].text.startswith(f"Training on {100 + len(GOOD_LABELS)} examples (100 seeds + 14")
    assert notes["result"].text.startswith(f"Retraining #{run_id}: v0002 is now serving (was v0001).")
    png = Path(notes["result"].attachment)
    assert png == runs_dir(dep.settings.data_dir, run_id) / "confusion.png" == Path(report["confusion_png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@real_model
@pytest.mark.sqlite_only  # one more training run; the promoted and the killed runs cover PostgreSQL
def test_a_bad_label_set_is_refused_and_the_old_version_keeps_serving(deployment: Deployment) -> None:
    from bot.app import load_classifier

    dep = deployment
    dep.label(BAD_LABELS)
    run_id = dep.new_run(language="zh")
    assert dep.run(run_id) == 0
    run = dep.get_run(run_id)
    report = run.report
    print(figures(report), "greeting:", report["per_intent"]["greeting"])
    assert run.status == TrainingRunStatus.REFUSED and run.active is None and run.version == "v0002"
    assert report["decision"] == "refused" and report["reason_code"] in ("intent_drop", "worse_overall")
    assert report["per_intent"]["greeting"]["delta"] < -0.05  # the greetings now read as event questions
    assert active_version(dep) == "v0001" and dep.registry.current_version() == "v0001"
    with Session(dep.engine) as s:  # the refused version is never recorded as a servable one
        assert s.exec(select(ModelVersion.version)).all() == ["v0001"]
    assert dep.notifications(run_id)["result"].text.startswith(f"重新训练 #{run_id}：v0002 未通过检查")
    serving = load_classifier(dep.settings, engine=dep.engine, progress=False)
    assert serving.version == "v0001"  # type: ignore[attr-defined]
    assert serving.predict(["hello everyone"])[0].intent == "greeting"


@real_model
@pytest.mark.sqlite_only  # one more training run; the promoted and the killed runs cover PostgreSQL
def test_a_dry_run_reports_but_never_promotes(deployment: Deployment) -> None:
    dep = deployment
    dep.label(GOOD_LABELS)
    run_id = dep.new_run(dry_run=True)
    assert dep.run(run_id) == 0
    run = dep.get_run(run_id)
    assert run.status == TrainingRunStatus.DRY_RUN and run.report["decision"] == "dry_run"
    assert run.report["would_promote"] is True  # the same data as the promoted run above
    assert active_version(dep) == "v0001" and dep.registry.current_version() == "v0001"
    assert dep.notifications(run_id)["result"].text.startswith(
        f"Retraining #{run_id} (dry run): v0002 would be promoted; v0001 keeps serving.")


@real_model
@pytest.mark.sqlite_only  # one more training run; the promoted and the killed runs cover PostgreSQL
def test_a_new_intent_is_trained_and_served_after_promotion(deployment: Deployment) -> None:
    from nlp.serving import open_serving_classifier

    dep = deployment
    serving = open_serving_classifier(data_dir=dep.settings.data_dir, base_model=dep.settings.base_model,
                                      engine=dep.engine, progress=False, check_every=0.0, background=False)
    assert serving.version == "v0001" and "job_post" not in serving.labels
    dep.label(JOB_POSTS)
    run_id = dep.new_run()
    assert dep.run(run_id) == 0
    report = dep.get_run(run_id).report
    print(figures(report))
    assert report["decision"] == "promoted" and report["new_intents"] == ["job_post"]
    assert report["per_intent"]["job_post"]["before"] is None
    prediction = serving.predict(["we are hiring a mobile developer, apply by friday"])[0]
    assert serving.version == "v0002" and "job_post" in serving.labels
    assert prediction.intent == "job_post"


@real_model
def test_a_failed_run_is_recorded_and_leaves_serving_untouched(deployment: Deployment,
                                                                tmp_path: Path) -> None:
    dep = deployment
    dep.settings = dep.settings.model_copy(update={"base_model": str(tmp_path / "no-such-model")})
    run_id = dep.new_run()
    assert dep.run(run_id) == 1
    run = dep.get_run(run_id)
    assert run.status == TrainingRunStatus.FAILED and run.active is None and run.finished_at is not None
    assert "Cannot load the base model" in run.error
    assert active_version(dep) == "v0001" and dep.registry.versions() == ["v0001"]
    result = dep.notifications(run_id)["result"].text
    assert result.startswith(f"Retraining #{run_id} failed: Cannot load the base model")
    assert result.endswith("The serving model v0001 is unchanged.")
    assert dep.run(run_id) == 2  # a finished run is never claimed again


def test_stale_runs_and_runs_of_dead_workers_are_reaped(deployment: Deployment) -> None:
    dep = deployment
    now = utcnow()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    queued_long_ago, running_dead, running_elsewhere = dep.new_run(), None, None
    with session_scope(dep.engine) as s:
        run = s.get(TrainingRun, queued_long_ago)
        assert run is not None
        run.created_at = now - timedelta(minutes=2)
        s.add(run)
    assert reap_stale_runs(dep.engine, now=now) == 1
    running_dead = dep.new_run()
    with session_scope(dep.engine) as s:
        run = s.get(TrainingRun, running_dead)
        assert run is not None
        run.status, run.pid, run.heartbeat_at = TrainingRunStatus.RUNNING, dead.pid, now
        run.report = {"host": socket.gethostname()}
        s.add(run)
    assert not worker_alive(dead.pid) and not worker_alive(os.getpid())  # this process is no worker
    assert reap_stale_runs(dep.engine, now=now) == 1
    running_elsewhere = dep.new_run()
    with session_scope(dep.engine) as s:
        run = s.get(TrainingRun, running_elsewhere)
        assert run is not None
        run.status, run.pid, run.heartbeat_at = TrainingRunStatus.RUNNING, dead.pid, now
        run.report = {"host": "another-host"}
        s.add(run)
    assert reap_stale_runs(dep.engine, now=now + timedelta(seconds=30)) == 0  # alive as far as we know
    assert reap_stale_runs(dep.engine, now=now + timedelta(seconds=61)) == 1  # silent for too long
    for run_id, why in ((queued_long_ago, "no sign of life for 120 s"), (running_dead, f"{dead.pid} is gone"),
                        (running_elsewhere, "no sign of life for 61 s")):
        run = dep.get_run(run_id)
        assert run.status == TrainingRunStatus.FAILED and run.active is None and why in run.error
        assert "stopped unexpectedly" in dep.notifications(run_id)["result"].text


def test_the_retrainer_passes_settings_and_config_to_the_worker(deployment: Deployment) -> None:
    dep = deployment
    retrainer = SubprocessRetrainer(dep.settings, config=FAST, heartbeat_seconds=0.5)
    command = retrainer.command(42)
    assert command[:5] == [sys.executable, "-m", "nlp.retrain_worker", "--run", "42"]
    args = parse_args(command[3:])
    assert args.run == 42 and args.heartbeat_seconds == 0.5
    assert _config(args, dep.settings) == FAST
    env = retrainer.environment()
    assert env["COMMUNITYBOT_DATABASE_URL"] == dep.settings.resolved_database_url()
    assert env["COMMUNITYBOT_BASE_MODEL"] == "all-MiniLM-L6-v2" and "DATABASE_URL" not in env
    assert SubprocessRetrainer(dep.settings.model_copy(update={"retrain_max_intent_drop": 0.1})).config == \
        RetrainConfig(max_intent_drop=0.1)


def _worker_log(dep: Deployment, run_id: int) -> str:
    path = runs_dir(dep.settings.data_dir, run_id) / "worker.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _finished(dep: Deployment, run_id: int) -> TrainingRun | None:
    run = dep.get_run(run_id)
    return run if run.status not in TrainingRunStatus.IN_PROGRESS else None


@real_model
def test_killing_the_worker_mid_training_leaves_the_old_version_serving_and_the_next_run_succeeds(
        deployment: Deployment) -> None:
    from nlp.serving import open_serving_classifier

    dep = deployment
    serving = open_serving_classifier(data_dir=dep.settings.data_dir, base_model=dep.settings.base_model,
                                      engine=dep.engine, progress=False, check_every=0.0, background=False)
    dep.label(GOOD_LABELS)
    retrainer = SubprocessRetrainer(dep.settings, config=FAST, heartbeat_seconds=0.5)
    killed = dep.new_run()
    retrainer.start(killed)  # returns at once: the worker process claims the run by itself
    staging = lambda: [p for p in dep.registry.root.iterdir() if p.name.startswith(".staging-")]  # noqa: E731
    try:
        wait_for(lambda: "training" in dep.notifications(killed) and staging(), timeout=120)
    except AssertionError:
        pytest.fail(f"the worker did not start training:\n{_worker_log(dep, killed)}")
    run = dep.get_run(killed)
    assert run.status == TrainingRunStatus.RUNNING and run.pid and worker_alive(run.pid)
    os.kill(run.pid, signal.SIGKILL)  # a real kill, in the middle of training
    wait_for(lambda: not worker_alive(run.pid or 0), timeout=10)

    assert dep.get_run(killed).status == TrainingRunStatus.RUNNING  # nobody could record anything
    assert dep.get_run(killed).version == ""  # it died before a version was registered
    assert active_version(dep) == "v0001" and dep.registry.current_version() == "v0001"
    assert dep.registry.versions() == ["v0001"]
    assert serving.predict(["hello everyone"])[0].intent == "greeting" and serving.version == "v0001"

    assert reap_stale_runs(dep.engine) == 1  # the pid is gone: no need to wait for the heartbeat to age
    run = dep.get_run(killed)
    assert run.status == TrainingRunStatus.FAILED and run.active is None and "is gone" in run.error

    second = dep.new_run()
    retrainer.start(second)
    try:
        done = wait_for(lambda: _finished(dep, second), timeout=300)
    except AssertionError:
        pytest.fail(f"the second run did not finish:\n{_worker_log(dep, second)}")
    assert isinstance(done, TrainingRun)
    print(figures(done.report))
    assert done.status == TrainingRunStatus.PROMOTED, _worker_log(dep, second)
    assert done.previous_version == "v0001" and done.version == "v0002" and done.pid != run.pid
    assert active_version(dep) == "v0002"
    serving.predict(["hello everyone"])
    assert serving.version == "v0002"
    with Session(dep.engine) as s:
        keys = s.exec(select(Notification.key).where(Notification.kind == "retrain")).all()
    assert f"retrain:{killed}:result" in keys and f"retrain:{second}:result" in keys
