"""Durable delivery (bot/delivery.py): two bot processes behind one Slack endpoint share a database; when one
dies at any point of a message's life, the other answers it exactly once.

Each "process" here is a real core + bolt adapter + HTTP endpoint over the shared database, talking to the
loopback fake Slack; a death is the state a ``kill -9`` leaves at that point (the whole-process kill is in
the load test, bench/load.py). Time is moved with the processes' clocks, not waited for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

import bot.app
from adapters.slack import REPLY_EVENT, SlackAdapter, serve_http
from bot.app import App, build_app
from bot.delivery import REPLY_KIND, Delivery
from bot.messages import IncomingMessage
from bot.models import MessageLog, Notification, NotificationStatus
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.jobs.conftest import FakeClock
from tests.slack.conftest import BOT_TOKEN, RULES, SECRET, TEAM, SlackBot
from tests.slack.fake_slack import FakeSlack

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass
class Process:
    """One bot process: its core, adapter, endpoint and durable delivery (swept by hand)."""

    bot: SlackBot
    delivery: Delivery
    clock: FakeClock

    def sweep(self) -> Any:
        self.delivery.beat()
        return self.delivery.sweep(self.bot.core.router, {"slack": self.bot.adapter})


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_workspace(TEAM, bot_token=BOT_TOKEN, bot_user_id="U_BOT", bot_id="B_OURS",
                            users=[{"id": "U_MEMBER", "name": "member"}],
                            channels=[{"id": "C_TEST", "name": "general"}])
        yield slack


@pytest.fixture
def start_process(settings: Settings, engine: Any, fake: FakeSlack,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Process]]:
    """``start_process()`` starts one more process on the shared database (``engine`` migrated it)."""
    classifier = FakeClassifier(RULES)
    monkeypatch.setattr(bot.app, "load_classifier", lambda settings, **kw: classifier)
    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: FakeMatcher())
    started: list[tuple[SlackAdapter, Any]] = []

    def start() -> Process:
        clock = FakeClock(T0)
        core: App = build_app(settings, progress=False)
        delivery = Delivery(core.engine, interval=3600, clock=clock)
        adapter = SlackAdapter(handle=core.handle, signing_secret=SECRET, bot_token=BOT_TOKEN,
                               community="default", api_url=fake.base_url, interval=0.01, delivery=delivery)
        core.router.delivery = delivery
        delivery.serve(core.router, ["slack"])
        delivery.beat()
        server = serve_http(adapter, host="127.0.0.1", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((adapter, server))
        url = f"http://127.0.0.1:{server.server_port}/slack/events"
        return Process(SlackBot(adapter, core, fake, url, classifier), delivery, clock)

    yield start
    for adapter, server in started:
        server.shutdown()
        server.server_close()
        adapter.close()


def _event(ts: str, text: str = "<@U_BOT> any meetup this week?") -> dict[str, Any]:
    return {"type": "event_callback", "team_id": TEAM, "event_id": f"Ev{ts}",
            "event": {"type": "app_mention", "user": "U_MEMBER", "text": text, "channel": "C_TEST",
                      "ts": ts, "event_ts": ts}}


def _message(proc: Process, ts: str) -> IncomingMessage:
    message = proc.bot.adapter.incoming(_event(ts)["event"], team_id=TEAM)
    assert message is not None
    return message


def _thread_posts(fake: FakeSlack, ts: str) -> list[dict[str, Any]]:
    return [p for p in fake.posts("C_TEST") if p.get("thread_ts") == ts]


def _later(*procs: Process, seconds: float) -> None:
    for proc in procs:
        proc.clock.now += timedelta(seconds=seconds)


def _reply_rows(engine: Any) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).where(Notification.kind == REPLY_KIND)).all())


def test_a_live_process_answers_once_and_records_the_reply_sent(start_process: Callable[[], Process],
                                                                  fake: FakeSlack, engine: Any) -> None:
    a = start_process()
    status, _, _ = a.bot.event(_event("1796040000.000100"))
    assert status == 200
    posts = fake.wait_for_posts(1, channel="C_TEST")
    assert posts[0]["thread_ts"] == "1796040000.000100"
    assert posts[0]["metadata"] == {"event_type": REPLY_EVENT,
                                    "event_payload": {"key": "reply:slack:T_TEST:C_TEST:1796040000.000100:0"}}
    a.bot.adapter.outbox.drain()
    rows = _reply_rows(engine)
    assert [(r.status, r.thread, r.owner) for r in rows] == [
        (NotificationStatus.SENT, "1796040000.000100", None)]
    with Session(engine) as session:
        log_row = session.exec(select(MessageLog)).one()
    assert log_row.handled_at is not None and log_row.owner is None and log_row.payload is None


def test_killed_after_the_claim_the_other_process_handles_it_once(start_process: Callable[[], Process],
                                                                  fake: FakeSlack) -> None:
    a, b = start_process(), start_process()
    ts = "1796040000.000200"
    assert a.bot.core.router._claim(_message(a, ts))  # the state a kill -9 right after the claim leaves
    # Slack retries the event to the other process: the claim stands, so it is not answered twice...
    assert b.bot.event(_event(ts), headers={"X-Slack-Retry-Num": "1"})[0] == 200
    assert _thread_posts(fake, ts) == []
    # ...and while A still beats, B leaves A's work alone
    _later(a, b, seconds=5)
    assert b.sweep().rehandled == 0
    # A stopped beating 10 s ago: B handles the message and answers once, in its thread
    _later(b, seconds=8)
    assert b.sweep().rehandled == 1
    b.bot.adapter.outbox.drain()
    assert len(_thread_posts(fake, ts)) == 1
    assert b.sweep().rehandled == 0
    b.bot.adapter.outbox.drain()
    assert len(_thread_posts(fake, ts)) == 1


def test_killed_before_posting_the_journalled_reply_is_posted_by_the_other(
        start_process: Callable[[], Process], fake: FakeSlack, engine: Any) -> None:
    a, b = start_process(), start_process()
    ts = "1796040000.000300"
    handled = a.bot.core.handle(_message(a, ts))  # handled and journalled; A dies before its outbox posts
    assert [r.key for r in handled.replies] == [f"reply:slack:T_TEST:C_TEST:{ts}:0"]
    assert [r.status for r in _reply_rows(engine)] == [NotificationStatus.SENDING]
    _later(b, seconds=11)
    report = b.sweep()
    assert (report.rehandled, report.redelivered, report.already_there) == (0, 1, 0)
    posts = _thread_posts(fake, ts)
    assert [p["text"] for p in posts] == [handled.replies[0].text.replace("&", "&amp;")
                                          .replace("<", "&lt;").replace(">", "&gt;")]
    assert [r.status for r in _reply_rows(engine)] == [NotificationStatus.SENT]
    assert b.sweep().redelivered == 0


def test_killed_after_posting_before_recording_it_is_not_posted_again(
        start_process: Callable[[], Process], fake: FakeSlack, engine: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = start_process(), start_process()
    ts = "1796040000.000400"
    monkeypatch.setattr(a.delivery, "mark_sent", lambda key: None)  # dies between Slack's ok and the update
    assert a.bot.event(_event(ts))[0] == 200
    fake.wait_for_posts(1, channel="C_TEST")
    a.bot.adapter.outbox.drain()
    assert [r.status for r in _reply_rows(engine)] == [NotificationStatus.SENDING]
    _later(b, seconds=11)
    report = b.sweep()
    assert (report.redelivered, report.already_there) == (0, 1)
    assert len(_thread_posts(fake, ts)) == 1
    assert [r.status for r in _reply_rows(engine)] == [NotificationStatus.SENT]
    replies_calls = fake.calls_to("conversations.replies")
    assert [c["ts"] for c in replies_calls] == [ts]


def test_two_survivors_take_over_a_dead_process_once(start_process: Callable[[], Process],
                                                     fake: FakeSlack) -> None:
    a, b, c = start_process(), start_process(), start_process()
    ts = "1796040000.000500"
    assert a.bot.core.router._claim(_message(a, ts))
    _later(b, c, seconds=11)
    assert b.sweep().rehandled + c.sweep().rehandled == 1
    b.bot.adapter.outbox.drain()
    c.bot.adapter.outbox.drain()
    assert len(_thread_posts(fake, ts)) == 1


def test_a_claim_older_than_the_recovery_window_is_given_up(start_process: Callable[[], Process],
                                                            fake: FakeSlack, engine: Any) -> None:
    a, b = start_process(), start_process()
    ts = "1796040000.000600"
    assert a.bot.core.router._claim(_message(a, ts))
    b.clock.now = datetime.fromtimestamp(float(ts), tz=UTC) + timedelta(minutes=11)
    assert b.sweep().given_up == 1
    b.bot.adapter.outbox.drain()
    assert _thread_posts(fake, ts) == []
    with Session(engine) as session:
        row = session.exec(select(MessageLog)).one()
    assert row.handled_at is not None and row.payload is None


def test_s1_s2_retries_and_a_slow_model_are_acknowledged_at_once_and_answered_once(
        start_process: Callable[[], Process], fake: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases S1 and S2 with durable delivery on (as ``communitybot run`` serves Slack): while the model
    takes 4 s, the same event three times (retry headers 1 and 2) and once more as a ``message`` are each
    acknowledged within 3 s, and the member gets one reply; the message is stored once."""
    a = start_process()
    predict = a.bot.classifier.predict

    def slow(texts: Any) -> Any:
        time.sleep(4)
        return predict(texts)

    monkeypatch.setattr(a.bot.classifier, "predict", slow)
    ts = "1796040000.000700"
    envelope = _event(ts, "<@U_BOT> when is the next meetup?")
    as_message = {**envelope, "event": {**envelope["event"], "type": "message"}}
    took = []
    for headers, body in (({}, envelope), ({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
                                           envelope),
                          ({"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}, envelope),
                          ({}, as_message)):
        status, seconds, _ = a.bot.event(body, headers=headers)
        assert status == 200
        took.append(seconds)
    assert max(took) < 3.0, took
    posts = fake.wait_for_posts(1, timeout=15, channel="C_TEST")
    time.sleep(0.5)
    assert len(_thread_posts(fake, ts)) == 1 and posts[0]["thread_ts"] == ts
    with Session(a.bot.core.engine) as session:
        key = f"slack:{TEAM}:C_TEST:{ts}"
        rows = session.exec(select(MessageLog).where(MessageLog.platform_key == key)).all()
    assert len(rows) == 1 and rows[0].handled_at is not None
