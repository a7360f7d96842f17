"""Slack events through the real bolt app over HTTP: cases S1 (retries, double delivery), S3 (never answer
yourself), S4 (threads), signatures, and the outbox's behaviour against the fake Web API."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlmodel import select

from bot.db import session_scope
from bot.models import MessageLog
from tests.slack.conftest import SECRET, TEAM, SlackBot
from tests.slack.fake_slack import app_mention_event, event_callback, message_event

QUESTION = "<@U_BOT> when is the next meetup?"


def _settle(bot: SlackBot, seconds: float = 0.6) -> None:
    """Give the lazy listeners and the outbox time to do anything they were going to do."""
    time.sleep(seconds)
    bot.adapter.outbox.drain(5)


def _logged(bot: SlackBot, key: str) -> int:
    with session_scope(bot.core.engine) as s:
        return len(s.exec(select(MessageLog).where(MessageLog.platform_key == key)).all())


def test_s1_retries_and_double_delivery_give_one_reply_one_classification_one_row(
    make_bot: Callable[..., SlackBot],
) -> None:
    bot = make_bot()
    msg = message_event(channel="C_TEST", user="U_MEMBER", text=QUESTION, ts="1700000000.000100")
    envelope = event_callback(TEAM, msg, event_id="Ev0001")
    answers = [bot.event(envelope)]
    answers.append(
        bot.event(envelope, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    )
    answers.append(
        bot.event(envelope, headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    )
    mention = app_mention_event(channel="C_TEST", user="U_MEMBER", text=QUESTION, ts="1700000000.000100")
    answers.append(bot.event(event_callback(TEAM, mention, event_id="Ev0002")))
    assert [status for status, _, _ in answers] == [200, 200, 200, 200]
    assert max(seconds for _, seconds, _ in answers) < 3.0
    bot.fake.wait_for_posts(1, timeout=5)
    _settle(bot)
    assert len(bot.fake.posts()) == 1
    assert bot.classifier.calls == ["when is the next meetup?"]  # mention stripped, classified once
    assert _logged(bot, f"slack:{TEAM}:C_TEST:1700000000.000100") == 1
    # a restart (new core and adapter, same database) still knows the message
    again = make_bot()
    status, _, _ = again.event(
        envelope, headers={"X-Slack-Retry-Num": "3", "X-Slack-Retry-Reason": "http_error"}
    )
    _settle(again)
    assert status == 200 and len(bot.fake.posts()) == 1


def test_s3_never_answer_yourself_or_other_bots_or_edits(make_bot: Callable[..., SlackBot]) -> None:
    bot = make_bot()
    own = message_event(
        channel="C_TEST",
        user="U_BOT",
        text="see <https://example.org|our guide>",
        ts="1700000001.000100",
        bot_id="B_OURS",
    )
    edited = message_event(
        channel="C_TEST",
        user=None,
        text=None,
        ts="1700000002.000100",
        subtype="message_changed",
        message={
            "type": "message",
            "user": "U_BOT",
            "bot_id": "B_OURS",
            "text": "<https://example.org>",
            "ts": "1700000001.000100",
        },
    )
    other_app = message_event(
        channel="C_TEST",
        user=None,
        text="help",
        ts="1700000003.000100",
        subtype="bot_message",
        bot_id="B_OTHER",
        username="otherbot",
    )
    no_text = message_event(channel="C_TEST", user="U_MEMBER", text=None, ts="1700000004.000100")
    for i, event in enumerate((own, edited, other_app, no_text)):
        status, _, _ = bot.event(event_callback(TEAM, event, event_id=f"Ev1{i}"))
        assert status == 200
    _settle(bot)
    assert bot.fake.posts() == [] and bot.classifier.calls == []


def test_s4_replies_go_to_the_thread_root(make_bot: Callable[..., SlackBot]) -> None:
    bot = make_bot()
    in_thread = message_event(
        channel="C_TEST",
        user="U_MEMBER",
        text=QUESTION,
        ts="1700000050.000200",
        thread_ts="1700000000.000100",
    )
    bot.event(event_callback(TEAM, in_thread, event_id="Ev0050"))
    at_root = message_event(
        channel="C_TEST", user="U_MEMBER", text="<@U_BOT> any angel investors here?", ts="1700000060.000300"
    )
    bot.event(event_callback(TEAM, at_root, event_id="Ev0060"))
    direct = message_event(
        channel="D_MEMBER",
        user="U_MEMBER",
        text="hi, any meetup soon?",
        ts="1700000070.000400",
        channel_type="im",
    )
    bot.event(event_callback(TEAM, direct, event_id="Ev0070"))
    posts = bot.fake.wait_for_posts(3, timeout=5)
    by_channel = {(p["channel"], p.get("thread_ts")) for p in posts}
    assert ("C_TEST", "1700000000.000100") in by_channel  # the parent, never a stray root post
    assert ("C_TEST", "1700000060.000300") in by_channel  # a root question gets its own thread
    assert ("D_MEMBER", None) in by_channel  # DMs stay flat
    assert not any(p["channel"] == "C_TEST" and not p.get("thread_ts") for p in posts)


def test_unaddressed_channel_messages_get_no_reply(make_bot: Callable[..., SlackBot]) -> None:
    bot = make_bot()
    chatter = message_event(
        channel="C_TEST", user="U_MEMBER", text="anyone going to the meetup?", ts="1700000080.000100"
    )
    status, _, _ = bot.event(event_callback(TEAM, chatter, event_id="Ev0080"))
    _settle(bot)
    assert status == 200 and bot.fake.posts() == []


def test_forged_or_stale_signatures_are_refused_with_401_and_nothing_stored(
    make_bot: Callable[..., SlackBot],
) -> None:
    bot = make_bot()
    msg = message_event(channel="C_TEST", user="U_MEMBER", text=QUESTION, ts="1700000090.000100")
    envelope = event_callback(TEAM, msg, event_id="Ev0090")
    forged, _, _ = bot.event(envelope, secret="not-the-secret")
    stale, _, _ = bot.event(envelope, timestamp=int(time.time()) - 6 * 60)
    assert (forged, stale) == (401, 401)
    _settle(bot)
    assert bot.fake.posts() == [] and _logged(bot, f"slack:{TEAM}:C_TEST:1700000090.000100") == 0
    ok, _, _ = bot.event(envelope, secret=SECRET)
    assert ok == 200


def test_rate_limits_are_waited_out_and_a_removed_channel_is_disabled(
    make_bot: Callable[..., SlackBot],
) -> None:
    bot = make_bot()
    bot.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    bot.event(
        event_callback(
            TEAM,
            message_event(channel="C_TEST", user="U_MEMBER", text=QUESTION, ts="1700000100.000100"),
            event_id="Ev0100",
        )
    )
    posts = bot.fake.wait_for_posts(1, timeout=6)
    assert len(posts) == 1
    attempts = [c for c in bot.fake.calls if c.method == "chat.postMessage"]
    assert len(attempts) == 2 and attempts[1].at - attempts[0].at >= 0.95  # Retry-After honoured
    bot.fake.fail_channel("C_GONE", "not_in_channel")
    for i in range(2):
        bot.event(
            event_callback(
                TEAM,
                message_event(channel="C_GONE", user="U_MEMBER", text=QUESTION, ts=f"17000002{i}0.000100"),
                event_id=f"Ev02{i}",
            )
        )
    _settle(bot, 1.0)
    gone = [
        c for c in bot.fake.calls if c.method == "chat.postMessage" and c.params.get("channel") == "C_GONE"
    ]
    assert len(gone) == 1  # tried once, then disabled: never retried forever
    assert bot.adapter.outbox.disabled() == {(TEAM, "C_GONE"): "not_in_channel"}


def test_new_members_get_their_slack_name_from_users_info(make_bot: Callable[..., SlackBot]) -> None:
    from bot.models import Member, PlatformIdentity

    bot = make_bot()
    msg = message_event(channel="C_TEST", user="U_HOST", text="<@U_BOT> hello", ts="1700000700.000100")
    bot.event(event_callback(TEAM, msg, event_id="Ev0700"))
    bot.fake.wait_for_posts(1, timeout=5)
    with session_scope(bot.core.engine) as s:
        identity = s.exec(select(PlatformIdentity).where(PlatformIdentity.platform_user_id == "U_HOST")).one()
        member = s.get(Member, identity.member_id)
    assert member is not None and member.display_name == "host_name"
    assert [c.params["user"] for c in bot.fake.calls if c.method == "users.info"] == ["U_HOST"]
