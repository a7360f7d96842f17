"""Fixtures for the Slack adapter: the loopback fake Web API, the real bolt app on a real HTTP port, and a
core with fake models (so the tests measure the adapter, not the model)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bot.app
from adapters.slack import SlackAdapter, serve_http
from bot.app import App, build_app
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.slack.fake_slack import FakeSlack, sign

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T_TEST"
BOT_TOKEN = "xoxb-test"
RULES = [("meetup", "find_event", 0.95), ("angel", "find_member", 0.95), ("help", "help", 0.95)]


@dataclass
class SlackBot:
    """A running adapter: post signed requests to ``url``; see what the fake Slack received."""

    adapter: SlackAdapter
    core: App
    fake: FakeSlack
    url: str
    classifier: FakeClassifier

    def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/json",
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, float, bytes]:
        """POST ``body`` signed as Slack signs it; returns (HTTP status, seconds to the answer, body)."""
        all_headers = {"Content-Type": content_type, **sign(body, secret, timestamp), **(headers or {})}
        request = urllib.request.Request(self.url, data=body, headers=all_headers, method="POST")
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
                return response.status, time.monotonic() - start, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, time.monotonic() - start, exc.read()

    def event(self, envelope: dict[str, Any], **kwargs: Any) -> tuple[int, float, bytes]:
        return self.post(json.dumps(envelope).encode(), **kwargs)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk reads HTTP(S)_PROXY itself and ignores NO_PROXY: loopback calls must not go to a proxy."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_workspace(
            TEAM,
            bot_token=BOT_TOKEN,
            bot_user_id="U_BOT",
            bot_id="B_OURS",
            users=[{"id": "U_MEMBER", "name": "member"}, {"id": "U_HOST", "name": "host_name"}],
            channels=[{"id": "C_TEST", "name": "general"}, {"id": "C_EVENTS", "name": "events"}],
        )
        yield slack


@pytest.fixture
def make_bot(
    tmp_path: Path,
    fake: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str | None,
) -> Iterator[Callable[..., SlackBot]]:
    """``make_bot(handle_wrapper=None)`` starts an adapter on the same data dir and database (call twice = a
    restart); the database is the test's backend (SQLite or PostgreSQL: see ``tests/conftest.py``)."""
    classifier = FakeClassifier(RULES)
    monkeypatch.setattr(bot.app, "load_classifier", lambda settings, **kw: classifier)
    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: FakeMatcher())
    started: list[tuple[SlackAdapter, Any, App]] = []

    def make(handle_wrapper: Callable[[Any], Any] | None = None) -> SlackBot:
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[call-arg]
        core = build_app(settings, progress=False)
        handle = handle_wrapper(core.handle) if handle_wrapper else core.handle
        adapter = SlackAdapter(
            handle=handle,
            signing_secret=SECRET,
            bot_token=BOT_TOKEN,
            community="default",
            api_url=fake.base_url,
            interval=0.05,
        )
        server = serve_http(adapter, host="127.0.0.1", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((adapter, server, core))
        return SlackBot(
            adapter, core, fake, f"http://127.0.0.1:{server.server_port}/slack/events", classifier
        )

    yield make
    for adapter, server, core in started:
        stop(adapter, server)
        core.engine.dispose()


def stop(adapter: SlackAdapter, server: Any) -> None:
    """Stop serving, let the listeners still running on bolt's threads finish (while the fake Slack is up:
    none of them may log into, or write to the database of, the next test; on PostgreSQL the tests share
    one schema, emptied between them), then send what is queued."""
    server.shutdown()
    server.server_close()
    adapter.app._listener_runner.listener_executor.shutdown(wait=True)  # noqa: SLF001
    adapter.close()
