"""Slash commands through the real bolt app: case S2 (acknowledged in under 3 s while storage or the model is
slow, answered later through response_url, done exactly once) and case S5 (what people really type)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from bot.db import session_scope
from bot.messages import HandledMessage, IncomingMessage
from bot.models import Event
from tests.slack.conftest import TEAM, SlackBot
from tests.slack.fake_slack import event_callback, message_event, slash_command_form


def _command(bot: SlackBot, command: str, text: str, trigger: str) -> tuple[int, float, str]:
    url = bot.fake.new_response_url()
    form = slash_command_form(
        command=command,
        text=text,
        team_id=TEAM,
        channel_id="C_EVENTS",
        user_id="U_HOST",
        user_name="host_name",
        response_url=url,
        trigger_id=trigger,
    )
    status, seconds, _ = bot.post(form, content_type="application/x-www-form-urlencoded")
    return status, seconds, url


def _events(bot: SlackBot) -> list[Event]:
    with session_scope(bot.core.engine) as s:
        return list(s.exec(select(Event)).all())


def _slow(seconds: float) -> Callable[[Callable[[IncomingMessage], HandledMessage]], Any]:
    def wrap(
        handle: Callable[[IncomingMessage], HandledMessage],
    ) -> Callable[[IncomingMessage], HandledMessage]:
        def slow_handle(message: IncomingMessage) -> HandledMessage:
            time.sleep(seconds)  # storage taking 4 s
            return handle(message)

        return slow_handle

    return wrap


def test_s2_command_is_acknowledged_fast_and_answered_later_exactly_once(
    make_bot: Callable[..., SlackBot],
) -> None:
    bot = make_bot(handle_wrapper=_slow(4.0))
    status, seconds, url = _command(bot, "/event", 'create "Spring Meetup" 2027-05-10 18:00', "trig-1")
    assert status == 200 and seconds < 3.0
    responses = bot.fake.wait_for_responses(1, timeout=10)
    assert "Spring Meetup" in responses[0]["text"]
    assert [e.title for e in _events(bot)] == ["Spring Meetup"]


def test_s2_first_message_after_a_cold_start_is_acknowledged_while_the_model_loads(
    make_bot: Callable[..., SlackBot],
    monkeypatch: Any,
) -> None:
    import bot.app

    loaded = bot.app.load_classifier

    def slow_load(settings: Any, **kw: Any) -> Any:
        time.sleep(4.0)
        return loaded(settings, **kw)

    monkeypatch.setattr(bot.app, "load_classifier", slow_load)
    slack = make_bot()
    msg = message_event(
        channel="C_TEST", user="U_MEMBER", text="<@U_BOT> any meetup soon?", ts="1700000300.000100"
    )
    status, seconds, _ = slack.event(event_callback(TEAM, msg, event_id="Ev0300"))
    assert status == 200 and seconds < 3.0
    posts = slack.fake.wait_for_posts(1, timeout=10)
    assert posts[0]["thread_ts"] == "1700000300.000100"


def test_s5_typographic_quotes_apostrophes_em_dashes_and_a_missing_quote(
    make_bot: Callable[..., SlackBot],
) -> None:
    bot = make_bot()

    def run(text: str, n: int) -> str:
        _command(bot, "/event", text, f"t{n}")
        return str(bot.fake.wait_for_responses(n, timeout=10)[n - 1]["text"])

    run("create \u201cSpring Meetup\u201d 2027-05-10 18:00 --where \u2018Room 3\u2019", 1)
    echoed = run('create "Bob\'s Q&amp;A night" 2027-05-10', 2)
    events = {e.title: e for e in _events(bot)}
    assert sorted(events) == ["Bob's Q&A night", "Spring Meetup"]
    assert events["Spring Meetup"].place == "Room 3" and events["Bob's Q&A night"].place == ""
    spring = events["Spring Meetup"].id
    run(f"edit {spring} \u2014where Picnic-Lawn", 3)
    unclosed = run('create "Unclosed 2027-06-01', 4)
    with session_scope(bot.core.engine) as s:
        assert s.get(Event, spring).place == "Picnic-Lawn"  # type: ignore[union-attr]
    assert "Traceback" not in unclosed and "quote" in unclosed.lower()
    assert len(_events(bot)) == 2
    assert not any(c in e.title for e in _events(bot) for c in "\u201c\u201d\u2018\u2019")
    assert "Q&amp;A" in echoed  # echoed back escaped for Slack: & < > shown literally


def test_two_first_commands_of_one_member_at_once_both_succeed(make_bot: Callable[..., SlackBot]) -> None:
    """Bolt runs lazy listeners on threads: the member row is created by one, the other retries."""
    bot = make_bot()
    _command(bot, "/event", 'create "First" 2027-05-10', "c1")
    _command(bot, "/event", 'create "Second" 2027-05-11', "c2")
    responses = bot.fake.wait_for_responses(2, timeout=10)
    assert all("Event created" in str(r["text"]) for r in responses)
    assert sorted(e.title for e in _events(bot)) == ["First", "Second"]


def test_rsvp_button_records_the_clicking_member_and_feedback_is_kept_for_review(
    make_bot: Callable[..., SlackBot],
) -> None:
    import json
    import urllib.parse

    from bot.models import MessageLog, Rsvp

    bot = make_bot()
    _command(bot, "/event", 'create "Demo night" 2027-05-10 18:00', "b1")
    created = bot.fake.wait_for_responses(1, timeout=10)[0]
    button = created["blocks"][1]["elements"][0]
    assert (button["action_id"], button["text"]["text"]) == ("rsvp:0", "RSVP")

    def click(action_id: str, value: str, n: int) -> str:
        payload = {
            "type": "block_actions",
            "user": {"id": "U_MEMBER", "username": "member"},
            "team": {"id": TEAM},
            "channel": {"id": "C_EVENTS"},
            "trigger_id": f"click{n}",
            "response_url": bot.fake.new_response_url(),
            "api_app_id": "A0FAKEAPP1",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value}],
        }
        form = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, seconds, _ = bot.post(form, content_type="application/x-www-form-urlencoded")
        assert status == 200 and seconds < 3.0
        return str(bot.fake.wait_for_responses(n, timeout=10)[n - 1]["text"])

    going = click("rsvp:0", button["value"], 2)
    with session_scope(bot.core.engine) as s:
        rsvps = s.exec(select(Rsvp)).all()
    assert [(r.event_id, r.status) for r in rsvps] == [(int(button["value"]), "yes")]
    assert "Demo night" in going
    click("feedback:1", "not_helpful", 3)
    with session_scope(bot.core.engine) as s:
        flagged = s.exec(
            select(MessageLog).where(MessageLog.sender == "U_MEMBER", MessageLog.needs_review)
        ).all()
    assert flagged and "not helpful" in flagged[-1].text
