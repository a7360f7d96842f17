"""Fixtures for the WeChat adapter: the loopback fake gateway, the real adapter connected to it, and a core
with fake models (so the tests measure the adapter, not the model)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bot.app
from adapters.wechat import WeChatAdapter
from bot.app import App, build_app
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.wechat.fake_puppet import FakePuppet, LoopThread

ROOM = "founders@chatroom"
MEMBER = "wxid_member"
ADMIN = "wxid_admin"
RULES = [("活动", "find_event", 0.95), ("天使", "find_member", 0.95), ("angel", "find_member", 0.95),
         ("问一下", "help", 0.95), ("你好", "greeting", 0.95), ("hello", "greeting", 0.95)]


@dataclass
class WeChatBot:
    """A running adapter connected to ``fake``; ``classifier`` records what the core classified."""

    adapter: WeChatAdapter
    core: App
    fake: FakePuppet
    classifier: FakeClassifier
    loop: LoopThread
    task: asyncio.Task[None]

    def settle(self, seconds: float = 0.3) -> None:
        """Wait until the adapter has read what was emitted and the outbox is empty."""
        time.sleep(seconds)
        for _ in range(100):
            pending = list(self.adapter._pending)  # noqa: SLF001 - the tests' view of the worker
            for future in pending:
                future.result(timeout=20)
            if self.adapter.outbox.drain(timeout=10) and not self.adapter._pending:  # noqa: SLF001
                break
        time.sleep(0.1)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def fake(loop_thread: LoopThread) -> Iterator[FakePuppet]:
    puppet = FakePuppet(contacts={MEMBER: "Ann", ADMIN: "Organiser Li"})
    loop_thread.call(puppet.start())
    yield puppet
    loop_thread.call(puppet.stop())


@pytest.fixture
def make_bot(
    tmp_path: Path, fake: FakePuppet, loop_thread: LoopThread, monkeypatch: pytest.MonkeyPatch,
    database_url: str | None,
) -> Iterator[Callable[..., WeChatBot]]:
    """``make_bot(**adapter_kwargs)`` starts an adapter on one data dir and database (the test's backend,
    SQLite or PostgreSQL: see ``tests/conftest.py``) and waits for its event stream."""
    classifier = FakeClassifier(RULES)
    monkeypatch.setattr(bot.app, "load_classifier", lambda settings, **kw: classifier)
    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: FakeMatcher())
    started: list[WeChatBot] = []

    def make(*, wait: bool = True, core: App | None = None, **kwargs: Any) -> WeChatBot:
        if core is None:
            settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url,  # type: ignore[call-arg]
                                default_timezone="Asia/Shanghai", default_language="zh")
            core = build_app(settings, progress=False)
        options: dict[str, Any] = {"send_interval": 0.0, "send_spacing": 0.0, "jitter": 0.0,
                                   "reconnect_initial": 0.05, "reconnect_max": 0.2, **kwargs}
        options.setdefault("endpoint", f"127.0.0.1:{fake.port}")
        adapter = WeChatAdapter(handle=core.handle, community="default", **options)

        async def spawn() -> asyncio.Task[None]:
            return asyncio.get_running_loop().create_task(adapter.run())

        task = loop_thread.call(spawn())
        running = WeChatBot(adapter, core, fake, classifier, loop_thread, task)
        started.append(running)
        if wait:
            fake.wait_streams(1)
            _wait_for(lambda: adapter.health().state == "logged_in" or not fake.logged_in)
        return running

    yield make
    for running in started:
        async def halt(item: WeChatBot = running) -> None:
            item.adapter._stopping = True  # noqa: SLF001
            item.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await item.task

        loop_thread.call(halt())
        running.adapter.close()
        running.core.engine.dispose()


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


wait_for = _wait_for
