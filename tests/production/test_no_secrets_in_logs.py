"""No secret or token in logs: the Slack adapter against the fake Slack (a normal answer, a 429 from Slack, a
refused token, a forged signature) and a WeChat adapter, with every log record captured at DEBUG; and the
settings' repr hides their secrets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.app
from adapters.slack import SlackAdapter, serve_http
from adapters.wechat import WeChatAdapter
from bot.app import build_app
from bot.messages import HandledMessage, IncomingMessage
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.slack.conftest import SlackBot
from tests.slack.fake_slack import FakeSlack, event_callback, message_event

TEAM = "T_SECRETS"
BOT_TOKEN = "xoxb-1111-2222-SeCrEtBoTtOkEnValue"
SIGNING_SECRET = "c0ffee5ecretS1gningValue0123456789"
WECHAT_TOKEN = "puppet_wxwork_SeCrEtWeChatToken42"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, WECHAT_TOKEN)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def slack_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackBot]:
    classifier = FakeClassifier([("meetup", "find_event", 0.95)])
    monkeypatch.setattr(bot.app, "load_classifier", lambda settings, **kw: classifier)
    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: FakeMatcher())
    with FakeSlack() as fake:
        fake.add_workspace(TEAM, bot_token=BOT_TOKEN, bot_user_id="U_BOT", bot_id="B_OURS",
                           users=[{"id": "U_MEMBER", "name": "member"}],
                           channels=[{"id": "C_TEST", "name": "general"}])
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=None)  # type: ignore[call-arg]
        core = build_app(settings, progress=False)
        adapter = SlackAdapter(handle=core.handle, signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN,
                               community="default", api_url=fake.base_url, interval=0.05)
        server = serve_http(adapter, host="127.0.0.1", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield SlackBot(adapter, core, fake, f"http://127.0.0.1:{server.server_port}/slack/events",
                           classifier)
        finally:
            server.shutdown()
            server.server_close()
            adapter.close()


def _leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = []
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info)
                                      if record.exc_info else "")
        found += [f"{record.name}: {s[:8]}..." for s in SECRETS if s in text]
    return found


def _question(bot: SlackBot, n: int) -> None:
    event = message_event(channel="C_TEST", user="U_MEMBER", text="<@U_BOT> when is the next meetup?",
                          ts=f"17000{n:05d}.000100")
    status, _, _ = bot.post(_json(event_callback(TEAM, event, event_id=f"Ev{n}")), secret=SIGNING_SECRET)
    assert status == 200


def _json(envelope: object) -> bytes:
    import json

    return json.dumps(envelope).encode()


def test_slack_adapter_logs_no_token_or_signing_secret(
    slack_bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root logger: every library's debug lines too
    bot = slack_bot
    _question(bot, 1)  # a normal answer
    bot.fake.wait_for_posts(1, timeout=5)
    bot.fake.rate_limit("chat.postMessage", times=1, retry_after=1)  # Slack answers 429 once
    _question(bot, 2)
    bot.fake.wait_for_posts(2, timeout=6)
    forged, _, _ = bot.post(_json(event_callback(TEAM, message_event(
        channel="C_TEST", user="U_MEMBER", text="hi", ts="1700099999.000100"))), secret="wrong-secret")
    assert forged == 401
    bot.fake.revoke(BOT_TOKEN)  # the token is refused from now on
    _question(bot, 3)
    time.sleep(1.0)
    bot.adapter.outbox.drain(5)
    assert len(bot.fake.posts()) == 2
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG really was captured
    assert _leaks(caplog) == []


def test_wechat_adapter_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handle(message: IncomingMessage) -> HandledMessage:
        return HandledMessage(replies=())

    adapter = WeChatAdapter(handle=handle, endpoint="127.0.0.1:9", token=WECHAT_TOKEN, reconnect_initial=0.05,
                            reconnect_max=0.1, call_timeout=0.5, heartbeat_timeout=1.0)

    async def briefly() -> None:
        task = asyncio.create_task(adapter.run())
        await asyncio.sleep(1.5)  # a few refused connections to a closed port
        await adapter.stop()
        task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):  # only the logs matter here
            await asyncio.wait_for(task, 3)

    try:
        asyncio.run(briefly())
    finally:
        adapter.close()
    assert WECHAT_TOKEN not in repr(adapter) and WECHAT_TOKEN not in repr(adapter.health())
    assert any(r.name.startswith("adapters.wechat") for r in caplog.records)
    assert _leaks(caplog) == []


def test_settings_repr_hides_secrets() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
        slack_app_token="xapp-1-SeCrEtAppToken", slack_client_secret="SeCrEtClientSecret99",
        wechat_token=WECHAT_TOKEN,
    )
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in (*SECRETS, "xapp-1-SeCrEtAppToken", "SeCrEtClientSecret99"):
        assert secret not in shown
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == BOT_TOKEN  # still usable where it is needed
