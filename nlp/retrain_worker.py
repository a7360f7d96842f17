"""The retraining worker process: ``python -m nlp.retrain_worker --run ID``, and what starts and watches it.

``/bot retrain`` inserts a queued :class:`bot.models.TrainingRun` and calls :meth:`SubprocessRetrainer.start`,
which spawns this module as a detached process (its own session; output to
``<data_dir>/runs/<id>/worker.log``) and returns at once. The worker:

1. claims the run (``queued`` -> ``running`` with its pid, ``started_at`` and its host name in the report;
   a run claimed by someone else is left alone, exit code 2);
2. refreshes ``heartbeat_at`` every few seconds from a thread;
3. queues progress messages to the admin's conversation (kind ``retrain``, keys
   ``retrain:{run}:{step}`` with steps ``started``, ``training``, ``evaluating``, ``result``), in the run's
   language; the scheduler's dispatcher sends them;
4. trains a new registry version on the run's data (:mod:`nlp.retrain`) WITHOUT activating it, scores the
   serving model and the new one, gates, draws the confusion matrix (``runs/<id>/confusion.png``);
5. in ONE transaction: records the outcome on the run (``promoted`` / ``refused`` / ``dry_run``, the
   report, ``active`` NULL, ``finished_at``), queues the report (with the picture), and, when promoting,
   makes the new version the database's active one; only then updates the registry's ``CURRENT`` file.
   The update is conditional on the run still being this worker's, so a run that was reaped meanwhile
   (see :func:`reap_stale_runs`) promotes nothing.

Any exception (SIGTERM included) marks the run ``failed`` with the error, ``active`` NULL, and tells the
admin; the serving model is untouched, since nothing changes it before step 5. A SIGKILL cannot be
caught: the heartbeat stops, and :func:`reap_stale_runs` (called before a new run is inserted) marks the
run failed, so the next retrain can start. The worker runs at a lower CPU priority (nice 10) than the bot.

Settings come from the environment like the CLI's (``--data-dir`` and ``--database-url`` override).
Exit codes: 0 done (whatever the gate said), 1 failed, 2 not claimable, 3 taken away while running.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.errors import CommunityBotError, ModelError
from bot.i18n import tr
from bot.messages import Reply
from bot.models import ModelVersion, TrainingRun, TrainingRunStatus, utcnow
from bot.notifications import queue_notification
from bot.settings import Settings
from nlp.retrain import (
    DEFAULT_RECENT_DAYS,
    Evaluation,
    ReportInputs,
    RetrainConfig,
    RetrainData,
    build_report,
    build_training_data,
    confusion_png,
    evaluate_model,
    format_report,
    gate,
)
from nlp.seed import GOLDEN_HELD_OUT, SEED_LANGUAGES

if TYPE_CHECKING:
    from nlp.registry import IntentModelRegistry
    from nlp.training import TrainResult

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 5.0
"""How often the worker refreshes ``heartbeat_at``."""
DEFAULT_STALE_AFTER = timedelta(seconds=60)
"""A run in progress whose heartbeat is older than this is taken for dead."""
WORKER_NICENESS = 10
"""CPU priority the worker lowers itself by, so the bot on the same cores stays responsive."""
WORKER_MARK = "nlp.retrain_worker"
"""Part of the worker's command line: a pid whose command line lacks it is not a worker (pid reuse)."""
NOTIFICATION_KIND = "retrain"


def runs_dir(data_dir: Path, run_id: int) -> Path:
    """The folder of run ``run_id``'s files: ``<data_dir>/runs/<id>`` (log, confusion matrix)."""
    return Path(data_dir) / "runs" / str(run_id)


# --- starting the worker -------------------------------------------------------------------------------


class SubprocessRetrainer:
    """Starts :mod:`nlp.retrain_worker` processes (a :class:`bot.ports.Retrainer`).

    Args:
        settings: the deployment's settings; the worker gets them through its environment.
        config: what runs train on and how they are judged; default: the settings' gate margin and
            everything else at :class:`nlp.retrain.RetrainConfig`'s defaults.
        python: the interpreter to run the worker with.
        heartbeat_seconds: the worker's heartbeat period.
    """

    def __init__(self, settings: Settings, *, config: RetrainConfig | None = None,
                 python: str = sys.executable, heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS) -> None:
        self.settings = settings
        self.config = config or RetrainConfig(max_intent_drop=settings.retrain_max_intent_drop)
        self.python = python
        self.heartbeat_seconds = heartbeat_seconds

    def command(self, run_id: int) -> list[str]:
        """The worker's command line (no secrets: the database URL travels in the environment)."""
        return [self.python, "-m", WORKER_MARK, "--run", str(run_id),
                "--heartbeat-seconds", str(self.heartbeat_seconds), *config_args(self.config)]

    def environment(self) -> dict[str, str]:
        """This process's environment plus the settings the worker needs, as ``COMMUNITYBOT_*``."""
        s = self.settings
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update({
            "COMMUNITYBOT_DATA_DIR": str(s.data_dir.resolve()),
            "COMMUNITYBOT_DATABASE_URL": s.resolved_database_url(),
            "COMMUNITYBOT_MODEL_CACHE": str(s.model_cache),
            "COMMUNITYBOT_BASE_MODEL": s.base_model,
            "COMMUNITYBOT_SEED": str(s.seed),
            "COMMUNITYBOT_SQLITE_BUSY_TIMEOUT_MS": str(s.sqlite_busy_timeout_ms),
            "COMMUNITYBOT_RETRAIN_MAX_INTENT_DROP": str(s.retrain_max_intent_drop),
        })
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return env

    def start(self, run_id: int) -> None:
        """Spawn the worker for the queued run ``run_id`` and return at once (it runs detached, in a new
        session, writing to ``<data_dir>/runs/<id>/worker.log``; a thread of this process reaps it when it
        ends, so it never lingers as a zombie).

        Raises:
            ModelError: the process cannot be started (the message says why).
        """
        log_path = runs_dir(self.settings.data_dir, run_id) / "worker.log"
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as out:
                proc = subprocess.Popen(self.command(run_id), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, env=self.environment(),
                                        start_new_session=True, close_fds=True)
        except OSError as exc:
            raise ModelError(f"Cannot start the retraining worker: {exc}.") from exc
        threading.Thread(target=proc.wait, name=f"retrain-worker-{run_id}", daemon=True).start()
        log.info("retraining run %s: worker pid %s started (log %s)", run_id, proc.pid, log_path)


def config_args(config: RetrainConfig) -> list[str]:
    """``config`` as worker command-line options (:func:`parse_args` reads them back)."""
    args = ["--max-intent-drop", repr(config.max_intent_drop), "--recent-days", str(config.recent_days),
            "--seed-languages", ",".join(config.seed_languages)]
    for flag, value in (("--epochs", config.epochs), ("--seeds-per-intent", config.seeds_per_intent),
                        ("--golden-per-intent", config.golden_per_intent)):
        if value is not None:
            args += [flag, str(value)]
    return args


# --- claiming, heartbeat, finishing ---------------------------------------------------------------------


def _in_progress() -> Any:
    return col(TrainingRun.status).in_(TrainingRunStatus.IN_PROGRESS)


def claim_run(engine: Engine, *, run_id: int, pid: int, now: datetime) -> TrainingRun | None:
    """Move the queued run ``run_id`` to ``running`` for process ``pid`` (one conditional update, so
    two workers cannot both claim it). Returns the claimed row, or ``None`` when it is not queued."""
    with Session(engine) as session:
        done = session.execute(
            sa.update(TrainingRun)
            .where(col(TrainingRun.id) == run_id, col(TrainingRun.status) == TrainingRunStatus.QUEUED,
                   col(TrainingRun.active) == 1)
            .values(status=TrainingRunStatus.RUNNING, pid=pid, started_at=now, heartbeat_at=now,
                    report={"host": socket.gethostname()}))
        session.commit()
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(TrainingRun, run_id)


def _ours(run_id: int, pid: int) -> Any:
    return sa.and_(col(TrainingRun.id) == run_id, col(TrainingRun.status) == TrainingRunStatus.RUNNING,
                   col(TrainingRun.pid) == pid)


class Heartbeat:
    """A thread that refreshes the run's ``heartbeat_at`` every ``every`` seconds while the run is still
    this worker's; :attr:`lost` is set when it no longer is (reaped as stale)."""

    def __init__(self, engine: Engine, *, run_id: int, pid: int, every: float) -> None:
        self.engine, self.run_id, self.pid, self.every = engine, run_id, pid, every
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retrain-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def beat(self) -> None:
        """One refresh (database errors are logged: the next beat tries again)."""
        try:
            with Session(self.engine) as session:
                done = session.execute(sa.update(TrainingRun).where(_ours(self.run_id, self.pid))
                                       .values(heartbeat_at=utcnow()))
                session.commit()
            if done.rowcount == 0:  # type: ignore[attr-defined]
                self.lost.set()
        except Exception as exc:
            log.warning("heartbeat of run %s failed: %s", self.run_id, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()


class RunTakenAway(CommunityBotError):
    """The run was marked failed by someone else (reaped) while this worker was still on it."""


def notify(session: Session, run: TrainingRun, *, step: str, text: str, attachment: str = "") -> None:
    """Queue ``text`` for the run's conversation under ``retrain:{run}:{step}`` (at most once)."""
    queue_notification(session, key=f"retrain:{run.id}:{step}", community_id=run.community_id,
                       kind=NOTIFICATION_KIND, platform=run.platform, conversation=run.conversation,
                       reply=Reply(text=text, language=run.language), attachment=attachment)


def _notify_now(engine: Engine, run: TrainingRun, *, step: str, text: str) -> None:
    with Session(engine) as session:
        notify(session, run, step=step, text=text)
        session.commit()


def _set(engine: Engine, run: TrainingRun, **values: Any) -> None:
    """Update the run's columns while it is still this worker's.

    Raises:
        RunTakenAway: it no longer is.
    """
    assert run.id is not None and run.pid is not None
    with Session(engine) as session:
        done = session.execute(sa.update(TrainingRun).where(_ours(run.id, run.pid)).values(**values))
        session.commit()
    if done.rowcount == 0:  # type: ignore[attr-defined]
        raise RunTakenAway(f"retraining run {run.id} was marked failed while the worker was running")


def fail_run(engine: Engine, run: TrainingRun, *, error: str, serving: str) -> bool:
    """Mark the run ``failed`` with ``error`` (``active`` NULL, ``finished_at``) and tell the admin, when
    it is still this worker's; ``False`` when it was not (nothing changed)."""
    assert run.id is not None
    with Session(engine) as session:
        done = session.execute(
            sa.update(TrainingRun).where(_ours(run.id, run.pid or -1))
            .values(status=TrainingRunStatus.FAILED, error=error[:2000], active=None, finished_at=utcnow()))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            session.rollback()
            return False
        notify(session, run, step="result", text=failure_text(run, error=error, serving=serving))
        session.commit()
    return True


def failure_text(run: TrainingRun, *, error: str, serving: str) -> str:
    """The admin's message for a failed run."""
    serving = serving or "-"
    return tr(run.language,
              f"Retraining #{run.id} failed: {error}\nThe serving model {serving} is unchanged.",
              f"重新训练 #{run.id} 失败：{error}\n在线模型 {serving} 没有变化。")


# --- the run itself ------------------------------------------------------------------------------------


@dataclass
class WorkerContext:
    """What one worker works with."""

    engine: Engine
    settings: Settings
    config: RetrainConfig
    run: TrainingRun
    heartbeat: Heartbeat
    previous: str = ""


def execute(ctx: WorkerContext) -> str:
    """Train, evaluate, gate and finish the claimed run; returns its final status.

    Raises:
        RunTakenAway: the run was reaped meanwhile (nothing was promoted).
        Exception: anything from the data, the training or the evaluation (nothing was promoted).
    """
    from nlp.registry import IntentModelRegistry, intent_models_root

    run, started = ctx.run, time.perf_counter()
    registry = IntentModelRegistry(intent_models_root(ctx.settings.data_dir))
    ctx.previous = _serving_version(ctx.engine, registry)
    _set(ctx.engine, run, previous_version=ctx.previous)
    data = build_training_data(engine=ctx.engine, now=utcnow(), config=ctx.config)
    n_intents = len({label for _, label in data.train})
    _notify_now(ctx.engine, run, step="training", text=tr(
        run.language, f"Training on {len(data.train)} examples ({data.n_seed} seeds + {data.n_labels} admin "
                      f"labels, {n_intents} intents)...",
        f"正在训练：{len(data.train)} 条样本（种子 {data.n_seed} 条 + 管理员标注 {data.n_labels} 条，"
        f"{n_intents} 个意图）……"))
    training = time.perf_counter()
    version, result = registry.train_new_version(
        examples=data.train, base_model=ctx.settings.base_model, activate=False, epochs=ctx.config.epochs,
        seed=ctx.settings.seed, progress=False)
    train_seconds = time.perf_counter() - training
    _set(ctx.engine, run, version=version)
    _check(ctx)
    _notify_now(ctx.engine, run, step="evaluating", text=tr(
        run.language, f"Evaluating {version} against {ctx.previous or 'nothing'} on {len(data.evaluation)} "
                      "held-out examples...",
        f"正在评估：{version} 对比 {ctx.previous or '（无）'}，共 {len(data.evaluation)} 条评估样本……"))
    report = _evaluate(ctx, registry=registry, data=data, result=result, version=version,
                       seconds={"train": train_seconds, "started": started})
    _check(ctx)
    return _finish(ctx, registry=registry, report=report, result=result)


def _check(ctx: WorkerContext) -> None:
    if ctx.heartbeat.lost.is_set():
        raise RunTakenAway(f"retraining run {ctx.run.id} was marked failed while the worker was running")


def _serving_version(engine: Engine, registry: IntentModelRegistry) -> str:
    """The version serving now: the database's active one, else the registry's ``CURRENT``, else ``""``."""
    from nlp.registry import active_model_version

    active = active_model_version(engine)
    if active is not None:
        return active[0]
    return registry.current_version() or ""


def _evaluate(ctx: WorkerContext, *, registry: IntentModelRegistry, data: RetrainData, result: TrainResult,
              version: str, seconds: dict[str, float]) -> dict[str, Any]:
    """Score the serving model and the new one, gate, draw the matrix; the report (:mod:`nlp.retrain`)."""
    evaluated = time.perf_counter()
    before = _evaluate_previous(ctx, registry=registry, data=data)
    saw_golden = before is not None and not _version_metrics(ctx.engine, before.version).get(GOLDEN_HELD_OUT)
    after = evaluate_model(result.classifier, version=version, golden=data.golden, recent=data.recent)
    decision = gate(before=before, after=after, max_intent_drop=ctx.config.max_intent_drop)
    picture = ""
    try:
        title = f"{version} on {len(after.gold)} examples (accuracy {after.accuracy() or 0.0:.1%})"
        picture = str(confusion_png(after, path=runs_dir(ctx.settings.data_dir, ctx.run.id or 0)
                                    / "confusion.png", title=title))
    except Exception:  # the report goes out without the picture
        log.exception("could not draw the confusion matrix of run %s", ctx.run.id)
    now = time.perf_counter()
    timing = {"train": round(seconds["train"], 2), "evaluate": round(now - evaluated, 2),
              "total": round(now - seconds["started"], 2)}
    return build_report(ReportInputs(
        run_id=ctx.run.id or 0, dry_run=ctx.run.dry_run, data=data, before=before, after=after,
        decision=decision, config=ctx.config, base_model=ctx.settings.base_model,
        train_metrics=dict(result.metrics), seconds=timing, confusion_png=picture,
        baseline_saw_golden=saw_golden))


def _version_metrics(engine: Engine, version: str) -> dict[str, Any]:
    """The ``metrics`` of ``version``'s :class:`bot.models.ModelVersion` row (``{}`` without one)."""
    with Session(engine) as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    return dict(row.metrics or {}) if row is not None else {}


def _evaluate_previous(ctx: WorkerContext, *, registry: IntentModelRegistry,
                       data: RetrainData) -> Evaluation | None:
    """The serving model's :class:`nlp.retrain.Evaluation`, or ``None`` when none serves or it does not
    load (logged)."""
    from nlp.classifier import load_intent_model
    from nlp.registry import active_model_version

    if not ctx.previous:
        return None
    try:
        try:
            path = registry.path_of(ctx.previous)
        except ModelError:
            active = active_model_version(ctx.engine)
            if active is None or active[0] != ctx.previous:
                raise
            path = Path(active[1])
        classifier = load_intent_model(path)
    except ModelError as exc:
        log.warning("the serving model %s cannot be evaluated: %s", ctx.previous, exc.user_message)
        return None
    return evaluate_model(classifier, version=ctx.previous, golden=data.golden, recent=data.recent)


def _finish(ctx: WorkerContext, *, registry: IntentModelRegistry, report: dict[str, Any],
            result: TrainResult) -> str:
    """Record the outcome, queue the report and (when promoting) switch the database's active version, all
    in one transaction; then point the registry's ``CURRENT`` at it.

    Raises:
        RunTakenAway: the run is no longer this worker's (the transaction is rolled back).
    """
    from nlp.registry import activate_model_version

    run, version = ctx.run, report["version"]
    status = report["decision"]
    report = {"host": socket.gethostname(), **report}
    assert run.id is not None and run.pid is not None
    with Session(ctx.engine) as session:
        done = session.execute(sa.update(TrainingRun).where(_ours(run.id, run.pid)).values(
            status=status, report=report, active=None, finished_at=utcnow(), version=version))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            session.rollback()
            raise RunTakenAway(f"retraining run {run.id} was marked failed before it could finish")
        if status == TrainingRunStatus.PROMOTED:
            metrics = {**result.metrics, GOLDEN_HELD_OUT: True, "gate": {k: report[k] for k in (
                "run_id", "accuracy_before", "accuracy_after", "previous_version", "reason")}}
            activate_model_version(session, version=version, path=result.path,
                                   base_model=ctx.settings.base_model, labels=result.labels, metrics=metrics)
        notify(session, run, step="result", text=format_report(report, language=run.language),
               attachment=report["confusion_png"])
        session.commit()
    if status == TrainingRunStatus.PROMOTED:
        try:
            registry.activate(version)
        except ModelError as exc:  # the database decides what serves; CURRENT only follows it
            log.warning("could not point CURRENT at %s: %s", version, exc.user_message)
    log.info("retraining run %s: %s (%s)", run.id, status, report["reason"])
    return status


def run_worker(*, engine: Engine, settings: Settings, run_id: int, config: RetrainConfig,
               heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS) -> int:
    """Claim and carry out run ``run_id`` in this process (what ``python -m nlp.retrain_worker`` does).

    Returns:
        The exit code: 0 finished (promoted, refused or dry run), 1 failed (recorded on the run), 2 the
        run was not queued (or the database could not be read), 3 the run was taken away meanwhile.
    """
    try:
        run = claim_run(engine, run_id=run_id, pid=os.getpid(), now=utcnow())
    except SQLAlchemyError as exc:  # a wrong database URL or data directory, a database that is down
        log.error("cannot claim retraining run %s in %s: %s", run_id, engine.url, exc.__class__.__name__)
        log.debug("claim failed", exc_info=True)
        return 2
    if run is None:
        log.error("retraining run %s is not queued (already claimed, finished or unknown)", run_id)
        return 2
    _notify_now(engine, run, step="started", text=tr(
        run.language, f"Retraining #{run.id} started{' (dry run)' if run.dry_run else ''}: I will post the "
                      "progress and the report here. The bot keeps answering with the current model.",
        f"重新训练 #{run.id} 已开始{'（试运行）' if run.dry_run else ''}：进度和报告会发在这里，"
        "期间机器人继续使用当前模型回答。"))
    with Heartbeat(engine, run_id=run_id, pid=os.getpid(), every=heartbeat_seconds) as beat:
        ctx = WorkerContext(engine=engine, settings=settings, config=config, run=run, heartbeat=beat)
        try:
            execute(ctx)
        except RunTakenAway as exc:
            log.error("%s; nothing was promoted", exc.user_message)
            return 3
        except BaseException as exc:  # SIGTERM arrives as SystemExit; a failure is recorded either way
            log.exception("retraining run %s failed", run_id)
            fail_run(engine, run, error=_error_text(exc), serving=ctx.previous)
            return 1
    return 0


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, CommunityBotError):
        return exc.user_message
    if isinstance(exc, SystemExit | KeyboardInterrupt):
        return "the worker was stopped"
    return f"{type(exc).__name__}: {exc}"


# --- finding dead runs ---------------------------------------------------------------------------------


def reap_stale_runs(engine: Engine, *, now: datetime | None = None,
                    stale_after: timedelta = DEFAULT_STALE_AFTER) -> int:
    """Mark runs in progress whose worker is gone as ``failed`` (``active`` NULL), telling their admins;
    returns how many. Call it before inserting a new run, so a killed worker never blocks retraining.

    A run is taken for dead when its last sign of life (``heartbeat_at``, else ``started_at``, else
    ``created_at``: a queued run whose worker never started) is older than ``stale_after`` before ``now``
    (default: the current time), or when it runs on this host (its report's ``host``) under a pid that is
    not a live retraining worker (gone, a zombie, or reused by another program).
    """
    now = now or utcnow()
    with Session(engine) as session:
        runs = session.exec(select(TrainingRun).where(_in_progress())).all()
    return sum(_reap(engine, run, reason) for run in runs
               if (reason := _death_reason(run, now=now, stale_after=stale_after)))


def _death_reason(run: TrainingRun, *, now: datetime, stale_after: timedelta) -> str:
    """Why ``run`` is taken for dead (English, for the log and the run's ``error``), or ``""``."""
    last = run.heartbeat_at or run.started_at or run.created_at
    if now - last > stale_after:
        return f"the worker gave no sign of life for {int((now - last).total_seconds())} s"
    same_host = (run.report or {}).get("host") == socket.gethostname()
    if run.status == TrainingRunStatus.RUNNING and run.pid and same_host and not worker_alive(run.pid):
        return f"the worker process {run.pid} is gone"
    return ""


def _reap(engine: Engine, run: TrainingRun, reason: str) -> bool:
    """Fail ``run`` if it is still in the state it was seen in; ``True`` when it was."""
    with Session(engine) as session:
        done = session.execute(
            sa.update(TrainingRun)
            .where(col(TrainingRun.id) == run.id, col(TrainingRun.status) == run.status,
                   col(TrainingRun.active) == 1)
            .values(status=TrainingRunStatus.FAILED, active=None, finished_at=utcnow(),
                    error=f"stopped: {reason}"))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            session.rollback()
            return False
        text = tr(run.language, f"Retraining #{run.id} stopped unexpectedly ({reason}). The serving model is "
                                "unchanged; you can start a new retrain.",
                  f"重新训练 #{run.id} 意外中止。在线模型没有变化，可以重新开始训练。")
        notify(session, run, step="result", text=text)
        session.commit()
    log.warning("retraining run %s marked failed: %s", run.id, reason)
    return True


def worker_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process of this host running a retraining worker.

    Linux reads ``/proc``; elsewhere only the existence of the pid is checked.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X") and WORKER_MARK in cmdline


# --- the command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The worker's options (see :func:`config_args` for the run's configuration)."""
    p = argparse.ArgumentParser(prog="python -m nlp.retrain_worker",
                                description="Carry out one queued /bot retrain run.")
    p.add_argument("--run", type=int, required=True, help="TrainingRun id")
    p.add_argument("--data-dir", type=Path, help="data directory (default: COMMUNITYBOT_DATA_DIR)")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or the data dir's SQLite)")
    p.add_argument("--heartbeat-seconds", type=float, default=DEFAULT_HEARTBEAT_SECONDS)
    p.add_argument("--max-intent-drop", type=float, help="gate margin (default: the settings')")
    p.add_argument("--recent-days", type=int, default=DEFAULT_RECENT_DAYS)
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed-languages", default=",".join(SEED_LANGUAGES))
    p.add_argument("--seeds-per-intent", type=int)
    p.add_argument("--golden-per-intent", type=int)
    return p.parse_args(argv)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    update: dict[str, Any] = {}
    if args.data_dir is not None:
        update["data_dir"] = args.data_dir.expanduser().resolve()
    if args.database_url:
        update["database_url"] = args.database_url
    return settings.model_copy(update=update) if update else settings


def _config(args: argparse.Namespace, settings: Settings) -> RetrainConfig:
    drop = settings.retrain_max_intent_drop if args.max_intent_drop is None else args.max_intent_drop
    return RetrainConfig(max_intent_drop=drop, recent_days=args.recent_days, epochs=args.epochs,
                         seed_languages=tuple(x for x in args.seed_languages.split(",") if x),
                         seeds_per_intent=args.seeds_per_intent, golden_per_intent=args.golden_per_intent)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nlp.retrain_worker``; returns the exit code (see :func:`run_worker`)."""
    from bot.db import create_db_engine

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(WORKER_NICENESS)
    settings = _settings(args)
    engine = create_db_engine(settings.resolved_database_url(),
                              busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        return run_worker(engine=engine, settings=settings, run_id=args.run, config=_config(args, settings),
                          heartbeat_seconds=args.heartbeat_seconds)
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
