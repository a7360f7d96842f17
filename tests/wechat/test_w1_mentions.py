"""Case W1 of real_world_cases.md: mentions in rooms, and the kinds of mention it stands for (room alias,
full-width and case differences, the gateway's mention list with an outdated nickname, the bot's own
messages)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from adapters.wechat_markup import Mention, find_mention
from bot.db import session_scope
from bot.models import Community
from tests.wechat.conftest import ROOM, WeChatBot

W1_MESSAGES = [
    "@CommunityBot\u2005下周的活动几点开始？",
    "@CommunityBot 下周的活动几点开始？",
    "下周的活动几点开始？",
    "问一下 @CommunityBot",
    "@CommunityBotFan 你好",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (W1_MESSAGES[0], Mention(True, "下周的活动几点开始？")),
        (W1_MESSAGES[1], Mention(True, "下周的活动几点开始？")),
        (W1_MESSAGES[2], Mention(False, "下周的活动几点开始？")),
        (W1_MESSAGES[3], Mention(True, "问一下")),
        (W1_MESSAGES[4], Mention(False, "@CommunityBotFan 你好")),
        ("＠ｃｏｍｍｕｎｉｔｙｂｏｔ\u2005有活动吗", Mention(True, "有活动吗")),
        ("有人 @CommunityBot\u2005懂融资吗", Mention(True, "有人 懂融资吗")),
        ("@社区小助手\u2005有活动吗", Mention(True, "有活动吗")),
        ("@CommunityBot，有活动吗", Mention(True, "，有活动吗")),
        ("mail me at ann@CommunityBot.org", Mention(False, "mail me at ann@CommunityBot.org")),
    ],
)
def test_mentions_are_found_and_removed_and_nothing_else(text: str, expected: Mention) -> None:
    assert find_mention(text, ["CommunityBot", "社区小助手"]) == expected


def test_mention_detection_is_a_plain_function_not_a_truthy_coroutine() -> None:
    assert not inspect.iscoroutinefunction(find_mention)
    result = find_mention(W1_MESSAGES[2], ["CommunityBot"])
    assert not inspect.isawaitable(result)
    assert result.addressed is False
    assert bool(result.addressed) is False


def test_the_gateways_mention_list_counts_even_under_an_old_nickname() -> None:
    text = "@OldBotName\u2005有活动吗"
    assert find_mention(text, ["CommunityBot"], mentioned=True) == Mention(True, "有活动吗")
    assert find_mention(text, ["CommunityBot"]) == Mention(False, text)


def test_w1_in_a_room_only_mentions_are_answered_and_the_classifier_sees_the_text_without_them(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot()
    for text in W1_MESSAGES:
        bot.fake.say(text, room_id=ROOM)
    bot.settle()
    assert bot.classifier.calls == ["下周的活动几点开始？", "下周的活动几点开始？", "问一下"]
    sent = bot.fake.sent
    assert len(sent) == 3
    assert {s.conversation for s in sent} == {ROOM}
    # replies @mention the asker (by name and in the mention list) and never trigger the bot themselves
    assert all(s.text.startswith("@Ann\u2005") and s.mention_ids == ["wxid_member"] for s in sent)


def test_w1_a_listening_room_gets_answers_without_mentions(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot()
    with session_scope(bot.core.engine) as session:
        session.add(Community(name="default", settings={"listen_channels": [ROOM]}))
    for text in W1_MESSAGES:
        bot.fake.say(text, room_id=ROOM)
    bot.settle()
    assert bot.classifier.calls == [
        "下周的活动几点开始？", "下周的活动几点开始？", "下周的活动几点开始？", "问一下",
        "@CommunityBotFan 你好",
    ]
    assert len(bot.fake.sent) == 5


def test_the_room_alias_and_extra_names_address_the_bot(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot(bot_names=["小助手"])
    bot.fake.room_aliases[(ROOM, bot.fake.account_id)] = "活动管家"
    bot.fake.say("@活动管家\u2005下周有什么活动", room_id=ROOM)
    bot.fake.say("@小助手 这周有活动吗", room_id=ROOM)
    bot.fake.say("@活动管家的朋友 你好", room_id=ROOM)
    bot.settle()
    assert bot.classifier.calls == ["下周有什么活动", "这周有活动吗"]


def test_its_own_messages_never_trigger_it(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot()
    with session_scope(bot.core.engine) as session:
        session.add(Community(name="default", settings={"listen_channels": [ROOM]}))
    bot.fake.say("有活动吗", room_id=ROOM)
    bot.settle(0.6)
    # one reply; the gateway echoed it back as a message of the bot's account, and the bot ignored it
    assert len(bot.fake.sent) == 1
    assert bot.classifier.calls == ["有活动吗"]
    bot.fake.say("@CommunityBot 有活动吗", room_id=ROOM, from_id=bot.fake.account_id)
    bot.settle()
    assert len(bot.fake.sent) == 1
