"""Observability: metrics counted by the router, the scheduler and the outboxes, the request id on log lines
(text and JSON), ``/metrics`` and ``/healthz`` on the Slack server and on the standalone server of
``COMMUNITYBOT_METRICS_PORT`` (``communitybot jobs serve`` end to end).

Metrics are process-wide counters: each test uses its own platform label (or job name) so its counts are
exact whatever ran before it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Hashable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from adapters.outbox import Outbox
from adapters.slack import SlackAdapter, serve_http
from bot import observability
from bot.cli.jobs import metrics_server_for
from bot.db import session_scope
from bot.messages import HandledMessage, IncomingMessage, Match
from bot.models import Community, Notification
from bot.router import Router
from bot.settings import Settings
from jobs.context import JobContext
from jobs.registry import JobSpec
from jobs.scheduler import run_now
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.slack.fake_slack import FakeSlack

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
RULES = [("angel", "find_member", 0.93), ("hello", "greeting", 0.95), ("mumble", "find_member", 0.3),
         ("explode", "find_member", 0.95)]


def samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of :func:`observability.metrics_text`, by (name, labels)."""
    text = observability.metrics_text().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(name: str, **labels: str) -> float:
    return samples().get((name, frozenset(labels.items())), 0.0)


class ExplodingMatcher(FakeMatcher):
    """Raises when asked about "explode" (a failure inside the handling of one message)."""

    def search(self, *, query: str, **kwargs: Any) -> list[Match]:
        if "explode" in query:
            raise RuntimeError("matcher down")
        return super().search(query=query, **kwargs)


@pytest.fixture
def platform() -> str:
    return "obs" + uuid.uuid4().hex[:8]


@pytest.fixture
def router(engine: Engine, settings: Settings) -> Router:
    member = Match(kind="member", id=7, title="Li Wei", score=0.71, why="offers: angel investing")
    return Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier(RULES),
                  matcher=lambda: ExplodingMatcher([member]), clock=lambda: NOW)


def msg(platform: str, text: str, key: str | None = None) -> IncomingMessage:
    return IncomingMessage(platform=platform, community="default", conversation="D1", sender="U_MEMBER",
                           text=text, received_at=NOW, is_direct=True, mentions_bot=False, platform_key=key)


def test_messages_latency_and_fallbacks_are_counted(router: Router, platform: str) -> None:
    apology, unsure = value("communitybot_fallbacks_total", kind="apology"), value(
        "communitybot_fallbacks_total", kind="unsure")
    assert router.handle(msg(platform, "any angel investors?")).intent == "find_member"
    assert router.handle(msg(platform, "know an angel for hardware?", key=f"{platform}:1")).replies
    assert router.handle(msg(platform, "know an angel for hardware?", key=f"{platform}:1")).duplicate
    assert router.handle(msg(platform, "hello there")).intent == "greeting"
    assert router.handle(msg(platform, "mumble mumble")).intent == "find_member"  # below the floor
    assert router.handle(msg(platform, "explode please")).failed

    assert value("communitybot_messages_total", platform=platform, intent="find_member") == 3
    assert value("communitybot_messages_total", platform=platform, intent="greeting") == 1
    assert value("communitybot_messages_total", platform=platform, intent="duplicate") == 1
    assert value("communitybot_messages_total", platform=platform, intent="failed") == 1
    assert value("communitybot_message_seconds_count", platform=platform) == 6
    assert value("communitybot_message_seconds_sum", platform=platform) > 0
    assert value("communitybot_message_seconds_bucket", platform=platform, le="+Inf") == 6
    assert value("communitybot_fallbacks_total", kind="apology") == apology + 1
    assert value("communitybot_fallbacks_total", kind="unsure") == unsure + 1
    text = observability.metrics_text().decode()
    assert f'communitybot_messages_total{{intent="greeting",platform="{platform}"}} 1.0' in text


def test_no_match_is_a_fallback(engine: Engine, settings: Settings, platform: str) -> None:
    r = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier(RULES),
               matcher=lambda: FakeMatcher([]), clock=lambda: NOW)
    before = value("communitybot_fallbacks_total", kind="no_match")
    r.handle(msg(platform, "any angel investors?"))
    assert value("communitybot_fallbacks_total", kind="no_match") == before + 1


def test_request_id_is_on_log_records_and_differs_between_messages(
    router: Router, platform: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.router"):
        router.handle(msg(platform, "explode once"))
        router.handle(msg(platform, "explode twice"))
    failures = [r for r in caplog.records if r.getMessage().startswith("failed to handle message")]
    ids = [cast(str, r.request_id) for r in failures]  # type: ignore[attr-defined]
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    assert observability.request_id.get() is None  # reset after handling
    outside = logging.getLogger("bot.test").makeRecord("bot.test", logging.INFO, __file__, 1, "x", (), None)
    assert outside.request_id == "-"  # type: ignore[attr-defined]


def test_root_handler_lines_carry_the_request_id() -> None:
    root = logging.getLogger()
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = ListHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    try:
        observability.install_request_id_logging()
        observability.install_request_id_logging()  # idempotent: one suffix
        with observability.request_scope("abcdef012345"):
            logging.getLogger("bot.test").warning("inside")
        logging.getLogger("bot.test").warning("outside")
    finally:
        root.removeHandler(handler)
    assert lines == ["WARNING bot.test: inside request_id=abcdef012345",
                     "WARNING bot.test: outside request_id=-"]


def test_job_runs_are_counted_by_outcome() -> None:
    ctx = cast(JobContext, SimpleNamespace(clock=lambda: NOW))
    name = "obs-" + uuid.uuid4().hex[:8]
    ok = JobSpec(name=name, summary="", target=f"{__name__}:_ok_job", every=60)
    bad = JobSpec(name=name, summary="", target=f"{__name__}:_failing_job", every=60)
    assert run_now(ok, ctx) == "done"
    assert run_now(ok, ctx) == "done"
    assert run_now(bad, ctx) == ""
    assert value("communitybot_job_runs_total", job=name, outcome="ok") == 2
    assert value("communitybot_job_runs_total", job=name, outcome="failed") == 1


def _ok_job(ctx: JobContext, now: datetime) -> str:
    return "done"


def _failing_job(ctx: JobContext, now: datetime) -> str:
    raise RuntimeError("job broke")


def test_notifications_pending_is_read_at_scrape_time(engine: Engine, router: Router) -> None:
    observability.watch_notifications(engine)
    assert value("communitybot_notifications_pending") == 0
    with session_scope(engine) as session:
        community = Community(name="obs")
        session.add(community)
        session.flush()
        assert community.id is not None
        for i, status in enumerate(("pending", "pending", "sent")):
            session.add(Notification(key=f"obs:{i}", community_id=community.id, kind="reminder",
                                     platform="slack", conversation="C1", status=status))
    assert value("communitybot_notifications_pending") == 2


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeSlack() as fake:
        fake.add_workspace("T_TEST", bot_token="xoxb-test", bot_user_id="U_BOT", bot_id="B_OURS",
                           users=[{"id": "U_MEMBER", "name": "member"}], channels=[])
        adapter = SlackAdapter(handle=lambda m: HandledMessage(replies=()), signing_secret="s" * 32,
                               bot_token="xoxb-test", community="default", api_url=fake.base_url,
                               interval=0.05)
        http = serve_http(adapter, host="127.0.0.1", port=0)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{http.server_port}"
        finally:
            http.shutdown()
            http.server_close()
            adapter.close()


def test_metrics_and_healthz_endpoints(server: str, router: Router, platform: str) -> None:
    router.handle(msg(platform, "hello"))
    with urllib.request.urlopen(f"{server}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        body = response.read().decode()
    assert f'communitybot_messages_total{{intent="greeting",platform="{platform}"}} 1.0' in body
    assert "communitybot_message_seconds_bucket" in body and "communitybot_job_runs_total" in body
    with urllib.request.urlopen(f"{server}/healthz", timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200
        assert json.loads(response.read())["database"] is True  # the router's database answered


# --- the standalone server (COMMUNITYBOT_METRICS_PORT) --------------------------------------------------

METRIC_NAMES = ("communitybot_messages_total", "communitybot_message_seconds_bucket",
                "communitybot_fallbacks_total", "communitybot_notifications_pending",
                "communitybot_job_runs_total", "communitybot_outbox_queued",
                "communitybot_outbox_wait_seconds")


def get(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET (an HTTP error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.fixture
def standalone(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The standalone server on a free loopback port; the database :func:`observability.health` checks
    is restored afterwards."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(observability, "_health_engine", observability._health_engine)
    http = observability.serve(0, "127.0.0.1")
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()


def test_standalone_server_answers_healthz_and_metrics(standalone: str, router: Router,
                                                       platform: str) -> None:
    router.handle(msg(platform, "hello"))  # the router gives its engine to health (watch_notifications)
    status, content_type, body = get(f"{standalone}/healthz")
    assert status == 200 and content_type == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok" and health["database"] is True
    assert health["pid"] == os.getpid() and health["uptime_seconds"] >= 0
    status, content_type, body = get(f"{standalone}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    text = body.decode()
    for name in METRIC_NAMES:
        assert name in text, name
    assert f'communitybot_messages_total{{intent="greeting",platform="{platform}"}} 1.0' in text
    assert get(f"{standalone}/slack/events")[0] == 404


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing/folder/x.sqlite3",
                                 "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"],
                         ids=["sqlite-missing-folder", "postgresql-refused"])
def test_healthz_is_503_when_the_database_does_not_answer(
    standalone: str, tmp_path: Path, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    broken = sa.create_engine(url.format(tmp=tmp_path))
    observability._health_engine = broken  # restored by the fixture
    try:
        with caplog.at_level(logging.WARNING, logger="bot.observability"):
            status, content_type, body = get(f"{standalone}/healthz")
            assert get(f"{standalone}/healthz")[0] == 503
    finally:
        broken.dispose()
    assert status == 503 and content_type == "application/json"
    health = json.loads(body)
    assert health["status"] == "unavailable" and health["database"] is False
    assert health["database_error"].startswith("OperationalError")
    assert "nobody" not in health["database_error"]  # the URL's user (and any password) stays out
    unavailable = [r for r in caplog.records if "database is unavailable" in r.getMessage()]
    assert len(unavailable) == 1  # logged once, not at every check
    assert get(f"{standalone}/metrics")[0] == 200  # metrics do not depend on the database


def test_health_does_not_wait_forever_for_a_hanging_database() -> None:
    release = threading.Event()

    class Hanging:
        def connect(self) -> Any:
            release.wait(30)
            raise RuntimeError("gave up")

    engine = cast(Engine, Hanging())
    try:
        start = time.monotonic()
        status, body = observability.health(engine, timeout=0.2)
        assert status == 503 and body["database_error"] == "no answer within 0.2 s"
        assert observability.health(engine, timeout=0.2)[0] == 503
        assert time.monotonic() - start < 5
        # the second check waited for the first one's query instead of starting another
        assert sum(t.name == "healthz-db" and t.is_alive() for t in threading.enumerate()) == 1
    finally:
        release.set()


def test_metrics_port_is_off_by_default_and_left_to_the_slack_server_on_its_port() -> None:
    assert metrics_server_for(Settings(metrics_port=None)) is None
    assert metrics_server_for(Settings(metrics_port=3000, slack_port=3000), slack_http=True) is None


def test_outbox_queue_depth_and_wait_are_measured() -> None:
    name = "obs-outbox-" + uuid.uuid4().hex[:8]
    go = threading.Event()

    def send(target: Hashable, payload: Any) -> str:
        go.wait(10)
        return "ok"

    outbox = Outbox(send, interval=0.0, name=name)
    try:
        for i in range(3):
            outbox.submit("C1", i)
        deadline = time.monotonic() + 5
        while outbox.queued() != 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert value("communitybot_outbox_queued", outbox=name) == 3
        go.set()
        assert outbox.drain(5)
        assert value("communitybot_outbox_queued", outbox=name) == 0
        assert value("communitybot_outbox_wait_seconds_count", outbox=name) == 3
    finally:
        go.set()
        outbox.close()


# --- JSON logs --------------------------------------------------------------------------------------------


def test_json_log_lines_carry_the_request_id_of_the_message(router: Router, platform: str) -> None:
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = ListHandler()
    handler.setFormatter(observability.json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        observability.install_request_id_logging()  # leaves a JSON formatter as it is
        assert router.handle(msg(platform, "explode please")).failed
        logging.getLogger("bot.test").warning("发送 %s", "完成")
    finally:
        root.removeHandler(handler)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    failed = [r for r in records if r["message"].startswith("failed to handle message")]
    assert len(failed) == 1
    line = failed[0]
    assert list(line)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert line["level"] == "ERROR" and line["logger"] == "bot.router"
    assert re.fullmatch(r"[0-9a-f]{12}", line["request_id"])
    assert "RuntimeError: matcher down" in line["exception"]
    assert datetime.fromisoformat(line["time"]).utcoffset() is not None
    assert records[-1]["message"] == "发送 完成" and records[-1]["request_id"] == "-"
    assert "发送" in lines[-1]  # readable, not \u-escaped


def test_jobs_serve_answers_on_the_metrics_port_and_logs_json(settings: Settings, engine: Engine,
                                                                tmp_path: Path) -> None:
    """``communitybot -v jobs serve`` with COMMUNITYBOT_METRICS_PORT and COMMUNITYBOT_LOG_FORMAT=json, as an
    operator runs it: /healthz and /metrics answer, and its log lines are JSON."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMMUNITYBOT_", "SLACK_", "WECHATY_", "DATABASE_URL"))}
    env.update(COMMUNITYBOT_METRICS_PORT="0", COMMUNITYBOT_METRICS_HOST="127.0.0.1",
               COMMUNITYBOT_LOG_FORMAT="json", NO_PROXY="127.0.0.1")
    if settings.database_url:
        env["COMMUNITYBOT_DATABASE_URL"] = settings.database_url
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-c", "from bot.cli import main; main()", "-v", "jobs", "serve", "--poll", "0.5",
         "--data-dir", str(settings.data_dir)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        port = None
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                continue
            if found := re.search(r"Metrics: /healthz and /metrics on 127\.0\.0\.1:(\d+)\.", seen[-1]):
                port = int(found.group(1))
        assert port is not None, seen[-20:]
        status, _, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and json.loads(body)["database"] is True
        status, _, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and b"communitybot_job_runs_total" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    while not lines.empty():
        seen.append(lines.get())
    logged = [json.loads(line) for line in seen if line.startswith("{")]
    assert logged, seen  # -v: the scheduler's INFO lines
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in logged)
    assert not [line for line in seen if line.startswith(("INFO ", "WARNING ", "ERROR "))], seen
