"""Observability: a request id per message on every log line (text or JSON), Prometheus metrics and a
health check, served over HTTP.

Metrics live on this module's own registry (:data:`REGISTRY`, not prometheus_client's global one) and are
served as text by :func:`metrics_text`; :func:`application` answers ``/metrics`` and ``/healthz`` (see
:func:`health`) and :func:`serve` runs it on ``COMMUNITYBOT_METRICS_PORT`` in processes without a Slack HTTP
server (Socket Mode, WeChat only, ``jobs serve``); the Slack server answers both paths itself.

- ``communitybot_messages_total{platform,intent}``: messages handled (``intent`` is the handled intent,
  ``command``, ``none`` when nothing was predicted, ``duplicate`` for a second delivery, ``failed``);
- ``communitybot_message_seconds{platform}``: time to handle one message (a histogram);
- ``communitybot_fallbacks_total{kind}``: ``apology`` (handling raised), ``unsure`` (below the confidence
  floor: the bot offered two readings), ``no_match`` (an intent handler answered without a match);
- ``communitybot_notifications_pending``: notifications waiting to be sent, read from the database when
  scraped (:func:`watch_notifications`);
- ``communitybot_job_runs_total{job,outcome}``: scheduled job runs, ``ok`` or ``failed``;
- ``communitybot_outbox_queued{outbox}``: replies waiting in (or being sent by) the paced outboxes of this
  process (``slack-outbox``, ``wechat-outbox``), read when scraped (:func:`watch_outbox`);
- ``communitybot_outbox_wait_seconds{outbox}``: time from queueing a reply to the platform accepting it
  (pacing, rate limits and retries included; a histogram).

The request id (:data:`request_id`, 12 hex characters) is set by the router for the time it handles one
message; :func:`install_request_id_logging` puts it on every log record as ``request_id`` (``-`` outside a
message) and appends ``request_id=...`` to the root handlers' formats. :func:`configure_logging` with
``json`` (``COMMUNITYBOT_LOG_FORMAT``) makes every line of the root handlers one JSON object instead
(:func:`json_formatter`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

log = logging.getLogger(__name__)

#: The registry every metric of this module is on (tests and ``/metrics`` read it).
REGISTRY = CollectorRegistry(auto_describe=True)
#: The ``Content-Type`` of :func:`metrics_text`.
CONTENT_TYPE = CONTENT_TYPE_LATEST

MESSAGES = Counter(
    "communitybot_messages", "Messages handled, by platform and intent.", ["platform", "intent"],
    registry=REGISTRY,
)
MESSAGE_SECONDS = Histogram(
    "communitybot_message_seconds", "Seconds to handle one message.", ["platform"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FALLBACKS = Counter(
    "communitybot_fallbacks",
    "Messages answered by a fallback: apology (handling failed), unsure (below the confidence floor), "
    "no_match (an intent answered without a match).",
    ["kind"], registry=REGISTRY,
)
NOTIFICATIONS_PENDING = Gauge(
    "communitybot_notifications_pending", "Notifications waiting to be sent (NaN when unknown).",
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "communitybot_job_runs", "Scheduled job runs, by job and outcome (ok, failed).", ["job", "outcome"],
    registry=REGISTRY,
)
OUTBOX_WAIT_SECONDS = Histogram(
    "communitybot_outbox_wait_seconds",
    "Seconds from queueing a reply in a paced outbox to the platform accepting it.", ["outbox"],
    registry=REGISTRY, buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
NOTIFICATIONS_PENDING.set(math.nan)

#: The id of the message being handled in this context; ``None`` outside one.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def new_request_id() -> str:
    """A fresh request id: 12 hex characters of a random UUID."""
    return uuid.uuid4().hex[:12]


@contextmanager
def request_scope(rid: str | None = None) -> Iterator[str]:
    """Set the request id (a new one unless given) for the ``with`` block; yields it."""
    rid = rid or new_request_id()
    token = request_id.set(rid)
    try:
        yield rid
    finally:
        request_id.reset(token)


def metrics_text() -> bytes:
    """All metrics of :data:`REGISTRY` in the Prometheus text exposition format."""
    return generate_latest(REGISTRY)


def count_message(platform: str, intent: str, seconds: float) -> None:
    MESSAGES.labels(platform=platform, intent=intent).inc()
    MESSAGE_SECONDS.labels(platform=platform).observe(seconds)


def count_fallback(kind: str) -> None:
    FALLBACKS.labels(kind=kind).inc()


def count_job_run(job: str, ok: bool) -> None:
    JOB_RUNS.labels(job=job, outcome="ok" if ok else "failed").inc()


def watch_notifications(engine: Engine) -> None:
    """Make ``notifications_pending`` count the pending notifications of ``engine``'s database at each
    scrape, and :func:`health` check that database (the latest engine given wins); NaN when the count
    fails."""
    global _health_engine
    _health_engine = engine

    def pending() -> float:
        from bot.models import Notification, NotificationStatus

        try:
            with Session(engine) as session:
                return float(session.exec(
                    select(func.count()).select_from(Notification)
                    .where(Notification.status == NotificationStatus.PENDING)
                ).one())
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is away
            log.debug("could not count pending notifications", exc_info=True)
            return math.nan

    NOTIFICATIONS_PENDING.set_function(pending)


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` (``-`` outside a message) where the record has none yet."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


_FILTER = RequestIdFilter()
_installed = False


def install_request_id_logging() -> None:
    """Put the request id on every log record and into the lines of the root logger's handlers.

    Idempotent. A filter on a logger does not see records propagated from child loggers, so besides the
    :class:`RequestIdFilter` on the root logger and its handlers, the log record factory is wrapped to set
    ``request_id`` when each record is made (any handler added later, a test's capture included, sees it).
    """
    global _installed
    root = logging.getLogger()
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
        fmt = handler.formatter
        if fmt is None or type(fmt) is logging.Formatter:
            pattern = fmt._fmt if fmt is not None else None
            if pattern is None:
                pattern = logging.BASIC_FORMAT
            if "request_id" not in pattern and "%(message)s" in pattern:
                handler.setFormatter(logging.Formatter(pattern + " request_id=%(request_id)s",
                                                       fmt.datefmt if fmt is not None else None))
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get() or "-"
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


# --- structured logs ---------------------------------------------------------------------------------------


def json_formatter() -> logging.Formatter:
    """A formatter writing each record as one JSON object: ``time`` (ISO 8601, UTC, milliseconds),
    ``level``, ``logger``, ``message``, ``request_id``, ``exception`` (the traceback text) when there is
    one, and any ``extra=`` fields of the call (python-json-logger)."""
    from pythonjsonlogger.json import JsonFormatter

    class _Formatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    return _Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "exc_info": "exception",
                       "stack_info": "stack"},
        json_ensure_ascii=False,
    )


def configure_logging(log_format: str = "text") -> None:
    """Set up a serving process's log lines (``COMMUNITYBOT_LOG_FORMAT``): the request id on every record
    (:func:`install_request_id_logging`) and, with ``json``, every root handler (a stderr one when there is
    none) writing :func:`json_formatter` lines."""
    root = logging.getLogger()
    if log_format == "json":
        if not root.handlers:
            root.addHandler(logging.StreamHandler(sys.stderr))
        formatter = json_formatter()
        for handler in root.handlers:
            handler.setFormatter(formatter)
    install_request_id_logging()


# --- outbox queues -----------------------------------------------------------------------------------------


class _Queue(Protocol):
    name: str

    def queued(self) -> int: ...


_OUTBOXES: weakref.WeakSet[Any] = weakref.WeakSet()


def watch_outbox(outbox: _Queue) -> None:
    """Count ``outbox.queued()`` in ``communitybot_outbox_queued{outbox=outbox.name}`` at each scrape (for as
    long as the outbox lives; outboxes of the same name add up)."""
    _OUTBOXES.add(outbox)


class _OutboxCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "communitybot_outbox_queued", "Replies waiting in (or being sent by) the paced outboxes.",
            labels=["outbox"],
        )
        totals: dict[str, int] = {}
        for outbox in list(_OUTBOXES):
            totals[outbox.name] = totals.get(outbox.name, 0) + outbox.queued()
        for name in sorted(totals):
            family.add_metric([name], totals[name])
        yield family


REGISTRY.register(_OutboxCollector())


# --- health ------------------------------------------------------------------------------------------------

#: Seconds :func:`health` waits for the database's answer before calling it unavailable.
HEALTH_TIMEOUT = 3.0
_STARTED = time.monotonic()
_health_engine: Engine | None = None
_probes: dict[int, _Probe] = {}
_probes_lock = threading.Lock()
_last_error: str | None = None


class _Probe:
    """One ``SELECT 1`` on a daemon thread. Checks that come while it runs wait for it instead of starting
    their own, so a database that hangs costs one thread, not one per scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.error: str | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, name="healthz-db", daemon=True).start()

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1")).scalar_one()
        except Exception as exc:  # noqa: BLE001 - any failure means the database is not usable
            orig = getattr(exc, "orig", None) or exc  # the driver's error, without SQLAlchemy's wrapping
            first = (str(orig).strip().splitlines() or [""])[0]
            self.error = f"{type(orig).__name__}: {first[:200]}" if first else type(orig).__name__
        finally:
            self.done.set()
            with _probes_lock:
                if _probes.get(id(self.engine)) is self:
                    del _probes[id(self.engine)]


def _database_error(engine: Engine, timeout: float) -> str | None:
    """``None`` when ``engine``'s database answered ``SELECT 1`` within ``timeout`` seconds, else why not."""
    with _probes_lock:
        probe = _probes.get(id(engine))
        if probe is None:
            probe = _probes[id(engine)] = _Probe(engine)
    if not probe.done.wait(timeout):
        return f"no answer within {timeout:g} s"
    return probe.error


def health(engine: Engine | None = None, *, timeout: float = HEALTH_TIMEOUT) -> tuple[int, dict[str, Any]]:
    """This process's health: ``(200, {"status": "ok", "database": true, ...})``, or ``503`` with
    ``"status": "unavailable"``, ``"database": false`` and ``database_error`` when the database (``engine``,
    else the one given to :func:`watch_notifications`) does not answer ``SELECT 1`` within ``timeout``
    seconds. ``"database": null`` (and 200) where no database was given. Also ``pid`` and
    ``uptime_seconds``. A change between healthy and not is logged once."""
    global _last_error
    engine = engine if engine is not None else _health_engine
    body: dict[str, Any] = {"status": "ok", "database": None, "pid": os.getpid(),
                            "uptime_seconds": round(time.monotonic() - _STARTED, 1)}
    error = None if engine is None else _database_error(engine, timeout)
    if engine is not None:
        body["database"] = error is None
    if error is not None:
        body.update(status="unavailable", database_error=error)
        if error != _last_error:
            log.warning("health: the database is unavailable: %s", error)
    elif _last_error is not None and engine is not None:
        log.warning("health: the database answers again")
    if engine is not None:
        _last_error = error
    return (200 if error is None else 503), body


# --- HTTP --------------------------------------------------------------------------------------------------

_StartResponse = Callable[..., Any]


def healthz(environ: dict[str, Any], start_response: _StartResponse) -> list[bytes]:
    """WSGI: :func:`health` as JSON, with its status code."""
    code, body = health()
    start_response("200 OK" if code == 200 else "503 Service Unavailable",
                   [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
    return [json.dumps(body).encode()]


def application(environ: dict[str, Any], start_response: _StartResponse) -> list[bytes]:
    """WSGI: ``/healthz`` (:func:`healthz`) and ``/metrics`` (:func:`metrics_text`); 404 elsewhere."""
    path = environ.get("PATH_INFO")
    if path == "/healthz":
        return healthz(environ, start_response)
    if path == "/metrics":
        start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
        return [metrics_text()]
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"not found: /healthz or /metrics\n"]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("metrics http: " + format, *args)


def serve(port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - scraped from other machines
    """Serve :func:`application` on ``host:port`` (0: any free port, see ``server_port``) in a daemon
    thread; ``shutdown()`` then ``server_close()`` stop it."""
    server = make_server(host, port, application, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
