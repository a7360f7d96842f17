"""``communitybot jobs list|run|serve``: the scheduled jobs, as organisers and operators see them.

``list`` shows every job, how often it runs, its next run as the active scheduler stored it, whether a
process is the active scheduler now, and the queued notifications by kind and status. ``run NAME`` runs a
job once, at once (``--now``: a job tied to a time of day, the digest, treats this moment as its time),
then sends what is due to the console's own chat and leaves the rest queued for the running bot's
dispatcher. ``serve`` runs the scheduler alone (no chat platform): it stands by until it holds the leader
lock, then runs the jobs; notifications for Slack or WeChat wait for a ``communitybot run`` process.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import (
    DataDirOption,
    JsonOption,
    fail,
    load_settings,
    open_database,
    print_json,
    require_data_dir,
)

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from sqlalchemy.engine import Engine

    from bot.settings import Settings
    from jobs.context import Sender
    from jobs.scheduler import SchedulerService

jobs_app = typer.Typer(help="Scheduled jobs: list, run one now, or serve the scheduler.",
                       no_args_is_help=True)


@jobs_app.command("list")
def list_jobs(data_dir: DataDirOption = None, json_out: JsonOption = False) -> None:
    """Every job with its interval and next run, the active scheduler, and the notification queue."""
    import sqlalchemy as sa
    from sqlmodel import func, select

    from bot.db import session_scope
    from bot.models import Notification
    from jobs.leader import LeaderLock
    from jobs.registry import JOBS
    from jobs.scheduler import JOBSTORE_TABLE

    settings = load_settings(data_dir)
    require_data_dir(settings)
    engine = open_database(settings)
    next_runs: dict[str, float] = {}
    if sa.inspect(engine).has_table(JOBSTORE_TABLE):
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")).all()  # noqa: S608
            next_runs = {str(r[0]): float(r[1]) for r in rows if r[1] is not None}
    probe = LeaderLock(engine)
    active = not probe.try_acquire()
    probe.release()
    with session_scope(engine) as session:
        queue = session.exec(
            select(Notification.kind, Notification.status, func.count()).group_by(
                Notification.kind, Notification.status
            )
        ).all()
    jobs = [
        {
            "name": job.name,
            "every_seconds": job.every,
            "next_run": datetime.fromtimestamp(next_runs[job.name], UTC).isoformat()
            if job.name in next_runs else None,
            "summary": job.summary,
        }
        for job in JOBS
    ]
    notifications = [{"kind": k, "status": s, "count": int(n)} for k, s, n in queue]
    if json_out:
        print_json({"active_scheduler": active, "jobs": jobs, "notifications": notifications})
        return
    typer.echo(f"Active scheduler: {'yes, a process holds the leader lock' if active else 'none running'}")
    for job in jobs:
        when = job["next_run"] or "not scheduled yet"
        typer.echo(f"  {job['name']:<14} every {job['every_seconds']:>5} s  next {when}  {job['summary']}")
    if notifications:
        typer.echo("Notifications:")
        for row in notifications:
            typer.echo(f"  {row['kind']:<16} {row['status']:<8} {row['count']}")


@jobs_app.command("run")
def run_job(
    name: Annotated[str, typer.Argument(help="The job's name (see `communitybot jobs list`).")],
    now: Annotated[bool, typer.Option("--now", help="Treat this moment as the job's scheduled time.")]
    = False,
    data_dir: DataDirOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run one job at once, then send what is due to the console's chat; the rest waits for the bot."""
    from adapters.console import ConsoleSender
    from bot.app import load_matcher
    from jobs.context import JobContext
    from jobs.dispatch import dispatch_due
    from jobs.registry import BY_NAME

    job = BY_NAME.get(name)
    if job is None:
        message = f"no job named {name!r}; the jobs are: {', '.join(BY_NAME)}"
        if json_out:
            print_json({"job": name, "error": message})
        raise fail(message, code=2)
    settings = load_settings(data_dir)
    require_data_dir(settings)
    engine = open_database(settings)
    ctx = JobContext(engine=engine, settings=settings, senders={"console": ConsoleSender(sys.stdout)},
                     matcher=lambda: load_matcher(settings, engine=engine), force=now)
    moment = ctx.clock()
    try:
        summary = job.function()(ctx, moment)
    except Exception as exc:  # noqa: BLE001 - shown to the operator, with the fix where we know it
        raise fail(f"job {name} failed: {exc}") from exc
    report = dispatch_due(engine, senders=ctx.senders, now=moment)
    if json_out:
        print_json({"job": name, "summary": summary, "sent": report.sent, "waiting": report.waiting,
                    "missed": report.missed, "failed": report.failed})
        return
    typer.echo(f"{name}: {summary}", err=True)
    typer.echo(f"sent here: {report.sent}; queued for the running bot (Slack/WeChat): {report.waiting}",
               err=True)


@jobs_app.command("serve")
def serve(
    data_dir: DataDirOption = None,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between leader-lock polls.")] = 10.0,
) -> None:
    """Run the scheduler alone until interrupted (standing by while another process is active); with
    COMMUNITYBOT_METRICS_PORT, /healthz and /metrics answer on that port."""
    from bot import observability

    settings = load_settings(data_dir)
    observability.configure_logging(settings.log_format)
    require_data_dir(settings)
    engine = open_database(settings)
    observability.watch_notifications(engine)  # the backlog gauge, and the database /healthz checks
    service = scheduler_for(settings, engine, {}, poll=poll)
    metrics = metrics_server_for(settings)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    typer.echo("Scheduler: standing by for the leader lock; stop with Ctrl-C.", err=True)
    service.start()
    was_active = False
    try:
        while not stopped.wait(0.2):
            if service.active != was_active:
                was_active = service.active
                typer.echo(f"Scheduler: {'active' if was_active else 'standing by'}", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()


def metrics_server_for(settings: Settings, *, slack_http: bool = False) -> WSGIServer | None:
    """Start the ``/healthz`` and ``/metrics`` server of ``COMMUNITYBOT_METRICS_PORT`` (in a daemon thread;
    ``shutdown()`` stops it) and say where; ``None`` when the port is unset, or when it is the Slack HTTP
    server's (``slack_http``: that server answers both paths itself)."""
    from bot import observability

    port = settings.metrics_port
    if port is None:
        return None
    if slack_http and port == settings.slack_port:
        typer.echo(f"Metrics: /healthz and /metrics on the Slack server's port :{port}.", err=True)
        return None
    try:
        server = observability.serve(port, settings.metrics_host)
    except OSError as exc:
        raise fail(f"cannot serve /healthz and /metrics on {settings.metrics_host}:{port} ({exc.strerror}): "
                   "another program (or another communitybot) listens there; set COMMUNITYBOT_METRICS_PORT "
                   "to a free port", code=2) from exc
    typer.echo(f"Metrics: /healthz and /metrics on {settings.metrics_host}:{server.server_port}.", err=True)
    return server


def scheduler_for(settings: Settings, engine: Engine, senders: dict[str, Sender], *,
                  poll: float = 10.0) -> SchedulerService:
    """The :class:`jobs.scheduler.SchedulerService` of a process: beside its platforms for
    ``communitybot run`` (their adapters are its senders), alone for ``jobs serve`` (no senders)."""
    from bot.app import load_matcher
    from jobs.context import JobContext
    from jobs.scheduler import SchedulerService

    ctx = JobContext(engine=engine, settings=settings, senders=senders,
                     matcher=lambda: load_matcher(settings, engine=engine))
    return SchedulerService(ctx, poll=poll)
