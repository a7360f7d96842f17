"""Cases W2 (stale replays after a reconnect) and W3 (messages that are not text) of real_world_cases.md."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from wechaty_grpc.wechaty import puppet as pb

from adapters.wechat import TEXT_ONLY_NOTE, message_time
from tests.wechat.conftest import MEMBER, ROOM, WeChatBot, wait_for

T = pb.MessageType


def test_w2_only_the_fresh_message_is_answered_after_30_stale_replays(
    make_bot: Callable[..., WeChatBot],
) -> None:
    now = time.time()
    bot = make_bot()
    fake = bot.fake
    # the gateway re-emits 30 messages dated 10 to 1 minutes ago, then one dated now
    for i in range(30):
        minutes_ago = 10 - i * 9 / 29
        fake.say(f"@CommunityBot 你好 {i}", room_id=ROOM, timestamp=now - minutes_ago * 60)
    fake.say("@CommunityBot 你好 now", room_id=ROOM)
    bot.settle()
    assert bot.classifier.calls == ["你好 now"]
    assert len(fake.sent) == 1
    assert bot.adapter.health().stale_skipped == 30


def test_w2_the_threshold_is_configurable_and_millisecond_timestamps_are_read(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot(stale_after=30)
    now = time.time()
    bot.fake.say("hello 60 s ago", from_id=MEMBER, timestamp=now - 60, millis=True)
    bot.fake.say("hello 10 s ago", from_id=MEMBER, timestamp=now - 10, millis=True)
    bot.settle()
    assert bot.classifier.calls == ["hello 10 s ago"]


def test_message_time_reads_seconds_milliseconds_and_unknown() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert message_time(1_700_000_000, now=now) == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert message_time(1_700_000_000_123, now=now) == datetime.fromtimestamp(1_700_000_000.123, tz=UTC)
    assert message_time(0, now=now) == now


NON_TEXT = [T.MESSAGE_TYPE_IMAGE, T.MESSAGE_TYPE_EMOTICON, T.MESSAGE_TYPE_AUDIO, T.MESSAGE_TYPE_ATTACHMENT,
            T.MESSAGE_TYPE_URL, T.MESSAGE_TYPE_MINI_PROGRAM, T.MESSAGE_TYPE_VIDEO]


@pytest.mark.parametrize("room", ["", ROOM])
def test_w3_non_text_never_raises_and_skips_the_classifier(
    make_bot: Callable[..., WeChatBot], room: str
) -> None:
    bot = make_bot()
    for kind in NON_TEXT:
        bot.fake.say("", type=kind, room_id=room, mention_ids=[bot.fake.account_id])
        bot.fake.say("<msg><appmsg>x</appmsg></msg>", type=kind, room_id=room)
    bot.fake.say("", type=T.MESSAGE_TYPE_RECALLED, room_id=room)
    bot.fake.say("<sysmsg>recalled</sysmsg>", type=T.MESSAGE_TYPE_RECALLED, room_id=room)
    bot.settle()
    assert bot.classifier.calls == []
    if room:  # nothing said in a room
        assert bot.fake.sent == []
    else:  # at most one polite note in the direct chat
        assert [(s.conversation, s.text) for s in bot.fake.sent] == [(MEMBER, TEXT_ONLY_NOTE)]
    # the bot still answers text afterwards
    bot.fake.say("@CommunityBot hello", room_id=room)
    bot.settle()
    assert bot.classifier.calls == ["hello"]


def test_w3_an_emoji_only_text_is_handled(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot()
    bot.fake.say("🎉")
    bot.fake.say("🎉", room_id=ROOM)
    bot.fake.say("@CommunityBot\u2005🎉", room_id=ROOM)
    bot.settle()
    assert bot.classifier.calls == []
    sent = [(s.conversation, s.text) for s in bot.fake.sent]
    assert len(sent) == 2
    assert sent[0] == (MEMBER, "👋 可以问我成员、资源或活动的问题。")
    assert sent[1][0] == ROOM and sent[1][1].endswith("👋 可以问我成员、资源或活动的问题。")


def test_w3_a_missing_payload_or_a_garbled_event_never_stops_the_bot(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot()
    bot.fake.emit(pb.EventType.EVENT_TYPE_MESSAGE, {"messageId": "no-such-message"})
    bot.fake.emit(pb.EventType.EVENT_TYPE_MESSAGE, "not json {")
    bot.fake.emit(pb.EventType.EVENT_TYPE_MESSAGE, "[1, 2]")
    bot.fake.emit(pb.EventType.EVENT_TYPE_MESSAGE, {})
    bot.fake.say("hello there")
    bot.settle()
    assert bot.classifier.calls == ["hello there"]
    wait_for(lambda: len(bot.fake.sent) == 1)
