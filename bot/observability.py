"""Observability: a request id per message on every log line, and Prometheus metrics.

Metrics live on this module's own registry (:data:`REGISTRY`, not prometheus_client's global one) and are
served as text by :func:`metrics_text` (the Slack adapter's ``/metrics``):

- ``communitybot_messages_total{platform,intent}``: messages handled (``intent`` is the handled intent,
  ``command``, ``none`` when nothing was predicted, ``duplicate`` for a second delivery, ``failed``);
- ``communitybot_message_seconds{platform}``: time to handle one message (a histogram);
- ``communitybot_fallbacks_total{kind}``: ``apology`` (handling raised), ``unsure`` (below the confidence
  floor: the bot offered two readings), ``no_match`` (an intent handler answered without a match);
- ``communitybot_notifications_pending``: notifications waiting to be sent, read from the database when
  scraped (:func:`watch_notifications`);
- ``communitybot_job_runs_total{job,outcome}``: scheduled job runs, ``ok`` or ``failed``.

The request id (:data:`request_id`, 12 hex characters) is set by the router for the time it handles one
message; :func:`install_request_id_logging` puts it on every log record as ``request_id`` (``-`` outside a
message) and appends ``request_id=...`` to the root handlers' formats.
"""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
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
    scrape (the latest engine given wins); NaN when the count fails."""

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
