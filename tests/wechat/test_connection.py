"""The connection to the gateway: token, reconnects with backoff, login / logout / scan, health notices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from wechaty_grpc.wechaty import puppet as pb

from adapters.wechat import WeChatAdapter
from tests.wechat.conftest import ADMIN, MEMBER, ROOM, WeChatBot, wait_for
from tests.wechat.fake_puppet import FakePuppet, LoopThread


def test_the_token_travels_as_wechaty_authorization(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot(token="puppet_token_123")
    assert bot.fake.metadata[-1]["authorization"] == "Wechaty puppet_token_123"


def test_after_the_stream_drops_the_bot_resumes_without_duplicate_replies(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot()
    first = bot.fake.say("@CommunityBot\u2005下周有什么活动", room_id=ROOM)
    bot.settle()
    assert len(bot.fake.sent) == 1
    # the gateway drops the stream and, on the next subscription, re-delivers the recent message
    bot.fake.replay = [first]
    bot.fake.drop_streams()
    wait_for(lambda: bot.fake.starts == 2 and bot.fake.open_streams() == 1)
    wait_for(lambda: bot.adapter.health().state == "logged_in")
    bot.settle()
    assert len(bot.fake.sent) == 1
    assert bot.classifier.calls == ["下周有什么活动"]
    # and it goes on answering new messages
    bot.fake.say("@CommunityBot\u2005这周有活动吗", room_id=ROOM)
    bot.settle()
    assert [s.conversation for s in bot.fake.sent] == [ROOM, ROOM]
    assert bot.classifier.calls == ["下周有什么活动", "这周有活动吗"]
    assert bot.adapter.health().reconnects == 1


def test_an_unreachable_gateway_is_retried_with_backoff_until_it_answers(
    make_bot: Callable[..., WeChatBot], loop_thread: LoopThread, fake: FakePuppet
) -> None:
    later = FakePuppet(contacts={MEMBER: "Ann"})
    port = fake.port  # a port known to be free once the fixture's fake is stopped
    loop_thread.call(fake.stop())
    bot = make_bot(wait=False, endpoint=f"127.0.0.1:{port}")
    time.sleep(0.6)  # a few refused connections
    assert bot.adapter.health().state == "connecting"
    loop_thread.call(later.start(port))
    try:
        wait_for(lambda: bot.adapter.health().state == "logged_in")
        assert bot.adapter.health().reconnects >= 1
        later.say("hello after the outage")
        later.wait_sent(1)
        assert bot.classifier.calls == ["hello after the outage"]
    finally:
        loop_thread.call(later.stop())


def test_login_logout_and_scan_are_tracked_and_admins_hear_when_the_account_is_back(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot(admin_ids=lambda: [ADMIN])
    health = bot.adapter.health()
    assert (health.state, health.account_id, health.account_name) == ("logged_in", "wxid_bot", "CommunityBot")
    bot.fake.emit(pb.EventType.EVENT_TYPE_LOGOUT, {"contactId": "wxid_bot", "data": "kicked out"})
    wait_for(lambda: bot.adapter.health().state == "logged_out")
    bot.fake.emit(pb.EventType.EVENT_TYPE_SCAN, {"status": 2, "qrcode": "https://login.weixin.qq.com/l/abc"})
    wait_for(lambda: bot.adapter.health().state == "waiting_for_scan")
    assert bot.adapter.health().qr_code == "https://login.weixin.qq.com/l/abc"
    bot.fake.emit(pb.EventType.EVENT_TYPE_LOGIN, {"contactId": "wxid_bot"})
    wait_for(lambda: bot.adapter.health().state == "logged_in")
    sent = bot.fake.wait_sent(1)
    assert [s.conversation for s in sent] == [ADMIN]
    assert "已重新登录微信" in sent[0].text and "CommunityBot" in sent[0].text


def test_a_silent_gateway_is_pinged_then_dropped(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot(heartbeat_timeout=0.3)
    # the fake answers a Ding with a Dong: the connection survives silence
    time.sleep(1.0)
    assert bot.fake.starts == 1
    assert bot.adapter.health().state == "logged_in"
    # a gateway that stays silent even to a Ding is dropped and connected again
    bot.fake.answer_dings = False
    wait_for(lambda: bot.fake.starts >= 2)
    assert bot.adapter.health().reconnects >= 1


@pytest.mark.parametrize("endpoint", ["wechat.example.org", ":9", "127.0.0.1:abc", "127.0.0.1:99999", "h:0"])
def test_a_malformed_endpoint_says_what_to_write(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"host:port \(e.g. 127.0.0.1:8788\)"):
        WeChatAdapter(handle=lambda m: None, endpoint=endpoint)  # type: ignore[arg-type,return-value]


def test_the_event_stream_has_no_call_deadline_and_cancelling_run_stops_it(
    make_bot: Callable[..., WeChatBot], loop_thread: LoopThread
) -> None:
    bot = make_bot(call_timeout=0.3)
    time.sleep(1.0)  # longer than a unary call may take: the stream must live on
    assert bot.fake.starts == 1
    bot.fake.say("hello after a quiet second")
    bot.fake.wait_sent(1)
    assert bot.classifier.calls == ["hello after a quiet second"]

    async def cancel() -> bool:
        bot.task.cancel()
        done, _ = await asyncio.wait({bot.task}, timeout=5)
        return bot.task in done

    assert loop_thread.call(cancel()) is True
    assert bot.task.cancelled()
