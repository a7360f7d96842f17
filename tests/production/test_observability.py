"""Observability: metrics counted by the router and the scheduler, the request id on log lines, and the
Slack server's ``/metrics`` and ``/healthz``.

Metrics are process-wide counters: each test uses its own platform label (or job name) so its counts are
exact whatever ran before it.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from adapters.slack import SlackAdapter, serve_http
from bot import observability
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
        assert response.status == 200 and response.read() == b"ok"
