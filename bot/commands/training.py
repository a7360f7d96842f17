"""``/bot retrain``, ``/bot rollback`` and ``/bot status`` (``/机器人 训练|回滚|状态``): the intent model's
life cycle, for admins.

* ``/bot retrain [--dry-run]`` queues a :class:`bot.models.TrainingRun` and has the retrainer
  (:class:`bot.ports.Retrainer`, a background worker) start it; training never runs in the request path.
  ``TrainingRun.active`` is unique, so two retrains at once give one run: the second insert fails and its
  admin is told which run is in progress. A run whose worker stopped (no heartbeat for
  :data:`STALE_AFTER`) is marked failed first, so a killed worker never blocks retraining for good. The run
  row is committed before the worker is started (the worker reads it from another process).
* ``/bot rollback [VERSION]`` makes VERSION (default: the newest retired version older than the serving
  one) the active :class:`bot.models.ModelVersion` in the database and retires the others; serving
  processes follow the database.
* ``/bot status``: the serving version and its metrics, the review queue's size, the last training run.

Models are shared by the whole deployment (one model serves every community), so a rollback by one
community's admin changes the model every community is served by.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.commands.admin import actor_of, audit, require_admin
from bot.commands.context import CommandContext
from bot.commands.parsing import Flag, parse_args
from bot.commands.replies import say
from bot.errors import UsageError
from bot.feedback import review_queue_size
from bot.i18n import tr
from bot.messages import Reply
from bot.models import ModelVersion, TrainingRun, TrainingRunStatus
from bot.notifications import queue_notification
from bot.timefmt import format_when

log = logging.getLogger(__name__)

#: A run in progress whose worker has not been heard of for this long is taken for dead.
STALE_AFTER = timedelta(seconds=90)
#: How many versions an unknown ``/bot rollback VERSION`` lists.
LISTED_VERSIONS = 10
#: Model statuses a rollback may go back to (a ``failed`` version never passed its evaluation).
SERVABLE = ("active", "retired")

_RETRAIN_FLAGS = (Flag("dry-run", aliases=("dry_run", "dryrun", "试运行", "演练"), takes_value=False),)


# --- /bot retrain ------------------------------------------------------------------------------------------

def retrain(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot retrain [--dry-run]`` (admins only): queue a training run and start the background worker.

    Commits the session (the run row must be visible to the worker process) before it calls
    ``ctx.retrainer.start(run_id)``; when starting fails the run is marked failed and committed, so it does
    not block the next retrain. Audited as ``retrain`` (run id, dry run, the stale run reaped if any).

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: words or flags other than ``--dry-run``.
    """
    require_admin(ctx, "Only community admins can retrain the bot.", "只有社区管理员可以重新训练机器人。")
    parsed = parse_args(args, flags=_RETRAIN_FLAGS, language=ctx.language)
    if parsed.positionals:
        raise UsageError(tr(ctx.language, "/bot retrain takes no words, only --dry-run.",
                            "/机器人 训练 不接受其他参数，只有 --dry-run。"))
    dry_run = bool(parsed.options.get("dry-run"))
    if ctx.retrainer is None:
        return [say(ctx, "Retraining is not available here: this bot process has no training worker. "
                         "Ask whoever runs the bot to enable it.",
                    "这里无法重新训练：这个机器人进程没有配置训练进程，请联系部署机器人的人开启。")]
    reaped = reap_stale_run(ctx, now=ctx.now)
    run = _queue_run(ctx, dry_run=dry_run)
    if run is None:
        return [_already_running(ctx)]
    assert run.id is not None
    audit(ctx, "retrain", run=run.id, dry_run=dry_run, reaped=reaped.id if reaped else None)
    ctx.session.commit()
    try:
        ctx.retrainer.start(run.id)
    except Exception as exc:
        log.exception("could not start the training worker for run %s", run.id)
        _mark_failed(ctx, run, f"the training worker could not be started: {exc}")
        return [say(ctx, f"Could not start the training worker ({exc}). The current model keeps serving.",
                    f"无法启动训练进程（{exc}）。当前模型继续服务。")]
    return [_started(ctx, run, reaped)]


def reap_stale_run(ctx: CommandContext, *, now: datetime) -> TrainingRun | None:
    """Mark the run in progress failed (and no longer active) when its worker has been silent for longer
    than :data:`STALE_AFTER` (its ``heartbeat_at``, else ``started_at``, else ``created_at``).

    Returns the run it marked, or ``None``; its admin is told through a queued notification. The update
    is conditional on the run still being active and still silent, so a heartbeat that arrives meanwhile,
    or another process reaping it first, wins.
    """
    run = ctx.session.exec(select(TrainingRun).where(TrainingRun.active == 1)).first()
    if run is None:
        return None
    last = run.heartbeat_at or run.started_at or run.created_at
    if now - last <= STALE_AFTER:
        return None
    silent = func.coalesce(TrainingRun.heartbeat_at, TrainingRun.started_at, TrainingRun.created_at)
    seconds = int((now - last).total_seconds())
    result = ctx.session.execute(
        update(TrainingRun)
        .where(col(TrainingRun.id) == run.id, col(TrainingRun.active) == 1, silent < now - STALE_AFTER)
        .values(status=TrainingRunStatus.FAILED, active=None, finished_at=now,
                error=f"the training worker stopped: no sign of life for {seconds} s")
        .execution_options(synchronize_session=False)
    )
    ctx.session.refresh(run)
    if not getattr(result, "rowcount", 0):
        return None
    _tell_reaped(ctx, run)
    return run


def _tell_reaped(ctx: CommandContext, run: TrainingRun) -> None:
    """Queue a note to the admin who asked for the reaped ``run``, where its progress was going."""
    assert run.id is not None
    text = tr(run.language, f"Retraining #{run.id} stopped: the training worker stopped responding. "
                            "The current model keeps serving.",
              f"训练 #{run.id} 已停止：训练进程没有响应。当前模型继续服务。")
    queue_notification(ctx.session, key=f"retrain:{run.id}:reaped", community_id=run.community_id,
                       kind="retrain", platform=run.platform, conversation=run.conversation,
                       reply=Reply(text=text, language=run.language))


def _queue_run(ctx: CommandContext, *, dry_run: bool) -> TrainingRun | None:
    """Insert the queued run (in a savepoint); ``None`` when another run is in progress (the unique
    ``active`` refuses the row)."""
    assert ctx.community.id is not None
    run = TrainingRun(
        community_id=ctx.community.id,
        requested_by=actor_of(ctx),
        platform=ctx.message.platform,
        conversation=ctx.message.sender,  # the admin's direct chat: progress is private
        language=ctx.language,
        dry_run=dry_run,
        created_at=ctx.now,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(run)
    except IntegrityError:
        return None
    return run


def _mark_failed(ctx: CommandContext, run: TrainingRun, error: str) -> None:
    """Mark ``run`` failed and no longer active, and commit."""
    run.status, run.active, run.error, run.finished_at = TrainingRunStatus.FAILED, None, error[:500], ctx.now
    ctx.session.add(run)
    ctx.session.commit()


def _already_running(ctx: CommandContext) -> Reply:
    """The answer to a retrain while another run is in progress (or was, a moment ago)."""
    run = ctx.session.exec(select(TrainingRun).where(TrainingRun.active == 1)).first()
    if run is None:  # it finished between our insert and this look
        return say(ctx, "A retraining was just finishing. Send /bot retrain again to start a new one.",
                   "上一次训练刚刚结束，请再发一次 /机器人 训练。")
    when = _when(ctx, run.started_at or run.created_at)
    by = f", {run.requested_by}" if run.community_id == ctx.community.id else ""
    return say(ctx, f"A retraining is already running (#{run.id}, started {when}{by}). "
                    "Its result will be posted when it is done; no second run was started.",
               f"已经有一次训练在进行中（#{run.id}，开始于 {when}{by}）。"
               "完成后会发布结果；没有再开始新的训练。")


def _started(ctx: CommandContext, run: TrainingRun, reaped: TrainingRun | None) -> Reply:
    en = f"Retraining started (#{run.id}); I'll post progress to you directly."
    zh = f"已开始重新训练（#{run.id}），进度会私信告诉你。"
    if run.dry_run:
        en += " Dry run: the new model is evaluated but not put into service."
        zh += "这是试运行：新模型只做评估，不会上线。"
    if reaped is not None:
        en += f" (Run #{reaped.id} had stopped responding and was marked failed.)"
        zh += f"（训练 #{reaped.id} 已无响应，标记为失败。）"
    return say(ctx, en, zh)


# --- /bot rollback -----------------------------------------------------------------------------------------

def rollback(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot rollback [VERSION]`` (admins only): make VERSION the active model version in the database.

    VERSION may be written ``v0003``, ``V3``, ``3`` or ``#3``; without it, the newest retired version older
    than the serving one. Audited as ``rollback`` (from, to).

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: more than one word; an unknown or failed VERSION (the message lists the known ones);
            nothing to go back to.
    """
    require_admin(ctx, "Only community admins can roll the bot's model back.",
                  "只有社区管理员可以回滚机器人的模型。")
    words = [t.text for t in parse_args(args, language=ctx.language).positionals]
    if len(words) > 1:
        raise UsageError(tr(ctx.language, "Give one version.", "请只给一个版本。"))
    versions = list(ctx.session.exec(select(ModelVersion).order_by(col(ModelVersion.id).desc())).all())
    current = next((v for v in versions if v.status == "active"), None)
    target = _named_version(ctx, versions, words[0]) if words else _previous_version(ctx, versions, current)
    if current is not None and target.id == current.id:
        return [say(ctx, f"{target.version} is already serving.", f"{target.version} 已经在服务中。")]
    for version in versions:
        if version.id == target.id or version.status == "active":
            version.status = "active" if version.id == target.id else "retired"
            ctx.session.add(version)
    ctx.session.flush()
    audit(ctx, "rollback", to=target.version, previous=current.version if current else None)
    return [_rolled_back(ctx, target, current)]


def _named_version(ctx: CommandContext, versions: list[ModelVersion], word: str) -> ModelVersion:
    """The version ``word`` names (exact name, or its number).

    Raises:
        UsageError: no such version, or it failed (lists the known versions).
    """
    wanted = word.strip().lower().lstrip("#＃")
    number = wanted.lstrip("v")
    for version in versions:
        name = version.version.lower()
        if name == wanted or (number.isdecimal() and name.lstrip("v").isdecimal()
                              and int(name.lstrip("v")) == int(number)):
            if version.status not in SERVABLE:
                known = _known_versions(ctx, versions)
                raise UsageError(tr(
                    ctx.language, f"{version.version} is {version.status} and cannot serve. {known}",
                    f"{version.version} 状态为 {_status_name(ctx, version.status)}，不能上线。{known}"))
            return version
    known = _known_versions(ctx, versions)
    raise UsageError(tr(ctx.language, f"There is no model version {word!r}. {known}",
                        f"没有模型版本「{word}」。{known}"))


def _previous_version(ctx: CommandContext, versions: list[ModelVersion],
                      current: ModelVersion | None) -> ModelVersion:
    """The newest retired version older than ``current`` (``versions`` are newest first).

    Raises:
        UsageError: there is none (lists the known versions).
    """
    current_id = (current.id or 0) if current is not None else None
    older = [v for v in versions
             if v.status == "retired" and (current_id is None or (v.id or 0) < current_id)]
    if not older:
        raise UsageError(tr(ctx.language, "There is no earlier model version to roll back to. "
                            + _known_versions(ctx, versions),
                            "没有可以回滚到的更早版本。" + _known_versions(ctx, versions)))
    return older[0]


def _known_versions(ctx: CommandContext, versions: list[ModelVersion]) -> str:
    """``Known versions: v0003 (active, accuracy 0.91), v0002 (retired)`` — the newest ten."""
    if not versions:
        return tr(ctx.language, "No model version is recorded yet.", "还没有记录任何模型版本。")
    shown = ", ".join(f"{v.version} ({_version_facts(ctx, v)})" for v in versions[:LISTED_VERSIONS])
    return tr(ctx.language, f"Known versions: {shown}.", f"已有版本：{shown}。")


def _version_facts(ctx: CommandContext, version: ModelVersion) -> str:
    """``active, accuracy 0.91, macro F1 0.89`` (the metrics it has)."""
    return ", ".join([_status_name(ctx, version.status), *_metric_parts(ctx, version.metrics)])


def _status_name(ctx: CommandContext, status: str) -> str:
    names = {"active": "服务中", "retired": "已停用", "failed": "失败"}
    return tr(ctx.language, status, names.get(status, status))


def _metric_parts(ctx: CommandContext, metrics: dict[str, Any]) -> list[str]:
    parts = []
    for key, en, zh in (("accuracy", "accuracy", "准确率"), ("macro_f1", "macro F1", "宏平均 F1")):
        value = metrics.get(key)
        if isinstance(value, int | float):
            parts.append(f"{tr(ctx.language, en, zh)} {value:.2f}")
    return parts


def _rolled_back(ctx: CommandContext, target: ModelVersion, current: ModelVersion | None) -> Reply:
    before = current.version if current else "-"
    facts = ", ".join(_metric_parts(ctx, target.metrics))
    en = f"Rolled back: {target.version} now serves (was {before})" + (f"; {facts}" if facts else "") + "."
    zh = f"已回滚：现在由 {target.version} 服务（原为 {before}）" + (f"；{facts}" if facts else "") + "。"
    running = ctx.session.exec(select(TrainingRun).where(TrainingRun.active == 1)).first()
    if running is not None and not running.dry_run:
        en += f" Retraining #{running.id} is in progress; if it passes its evaluation it will replace this."
        zh += f"训练 #{running.id} 正在进行，如果通过评估，它会替换这个版本。"
    return say(ctx, en, zh)


# --- /bot status -------------------------------------------------------------------------------------------

def status(ctx: CommandContext, args: str) -> list[Reply]:
    """``/bot status`` (admins only): the serving version and its metrics, the review queue's size, and the
    last training run (status, when, version, and from its report ``accuracy_before``/``accuracy_after``
    and the gate's ``reason`` / ``reason_code`` when present; the error of a failed run). Private.
    Audited as ``status``.

    Raises:
        PermissionDenied: the sender is not an admin.
        UsageError: any argument.
    """
    require_admin(ctx, "Only community admins can see the bot's status.",
                  "只有社区管理员可以查看机器人状态。")
    if args.strip():
        raise UsageError(tr(ctx.language, "/bot status takes no arguments.", "/机器人 状态 不接受参数。"))
    assert ctx.community.id is not None
    lines = [_serving_line(ctx), _queue_line(ctx), _last_run_line(ctx)]
    audit(ctx, "status")
    return [Reply(text="\n".join(lines), language=ctx.language, private=True)]


def _serving_line(ctx: CommandContext) -> str:
    active = ctx.session.exec(select(ModelVersion).where(ModelVersion.status == "active")
                              .order_by(col(ModelVersion.id).desc())).first()
    if active is None:
        return tr(ctx.language, "Serving model: none recorded yet.", "服务中的模型：尚无记录。")
    facts = ", ".join(_metric_parts(ctx, active.metrics)) or tr(ctx.language, "no metrics", "没有评估指标")
    when = _when(ctx, active.created_at)
    return tr(ctx.language, f"Serving model: {active.version} (trained {when}; {facts}).",
              f"服务中的模型：{active.version}（训练于 {when}；{facts}）。")


def _queue_line(ctx: CommandContext) -> str:
    assert ctx.community.id is not None
    size = review_queue_size(ctx.session, community_id=ctx.community.id)
    return tr(ctx.language, f"Review queue: {size} message(s) (/bot review).",
              f"待审核队列：{size} 条（/机器人 审核）。")


def _last_run_line(ctx: CommandContext) -> str:
    run = ctx.session.exec(select(TrainingRun).order_by(col(TrainingRun.id).desc())).first()
    if run is None:
        return tr(ctx.language, "Last training: none yet (/bot retrain).",
                  "最近一次训练：还没有（/机器人 训练）。")
    when = _when(ctx, run.finished_at or run.started_at or run.created_at)
    details = [f"#{run.id}", _run_status(ctx, run.status), when]
    if run.dry_run:
        details.append(tr(ctx.language, "dry run", "试运行"))
    if run.version:
        details.append(run.version)
    report = run.report if isinstance(run.report, dict) else {}
    details += _report_parts(ctx, report)
    if run.error:
        details.append(run.error[:200])
    return tr(ctx.language, "Last training: ", "最近一次训练：") + " · ".join(details)


_REASONS_ZH = {
    "no_baseline": "没有可比较的旧模型", "worse_overall": "整体准确率下降",
    "intent_drop": "有意图的召回率下降", "ok": "通过评估",
}


def _report_parts(ctx: CommandContext, report: dict[str, Any]) -> list[str]:
    """What the run's report says, as far as it says it: ``accuracy 0.86 → 0.91`` (``accuracy_before``,
    ``accuracy_after``) and the gate's reason (``reason``, English; ``reason_code`` for Chinese)."""
    parts = []
    before, after = report.get("accuracy_before"), report.get("accuracy_after")
    if isinstance(after, int | float):
        shown = f"{before:.2f} → {after:.2f}" if isinstance(before, int | float) else f"{after:.2f}"
        parts.append(tr(ctx.language, f"accuracy {shown}", f"准确率 {shown}"))
    reason, code = report.get("reason"), report.get("reason_code")
    if ctx.language == "zh" and isinstance(code, str) and code in _REASONS_ZH:
        parts.append(_REASONS_ZH[code])
    elif ctx.language != "zh" and isinstance(reason, str) and reason:
        parts.append(reason)
    return parts


def _run_status(ctx: CommandContext, value: str) -> str:
    names = {"queued": "排队中", "running": "进行中", "promoted": "已上线", "refused": "未通过评估",
             "dry_run": "试运行完成", "failed": "失败"}
    return tr(ctx.language, value.replace("_", " "), names.get(value, value))


def _when(ctx: CommandContext, moment: datetime) -> str:
    return format_when(moment, tz=ctx.settings.zone, language=ctx.language)
