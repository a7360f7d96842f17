"""Slack as a platform of scheduled work: notifications posted through the adapter's paced outbox, and a
channel join handed to the core as a ``member_joined`` message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.messages import Button, HandledMessage, IncomingMessage, Reply
from tests.slack.conftest import TEAM, SlackBot
from tests.slack.fake_slack import event_callback


def test_send_posts_a_notification_with_its_buttons_to_the_communitys_workspace(
    make_bot: Callable[..., SlackBot],
) -> None:
    bot = make_bot()
    reply = Reply(text="Demo Day tomorrow <18:00>", buttons=(Button("RSVP", "rsvp", "7"),))
    bot.adapter.send(community="default", conversation="C_EVENTS", reply=reply)
    [post] = bot.fake.posts()
    assert post["channel"] == "C_EVENTS" and post["text"] == "Demo Day tomorrow &lt;18:00&gt;"
    assert post["blocks"][1]["elements"][0]["action_id"] == "rsvp:0"
    with pytest.raises(LookupError, match="no Slack workspace serves the community 'elsewhere'"):
        bot.adapter.send(community="elsewhere", conversation="C_EVENTS", reply=reply)


def test_a_channel_join_reaches_the_core_as_member_joined_and_private_replies_go_to_a_dm(
    make_bot: Callable[..., SlackBot],
) -> None:
    seen: list[IncomingMessage] = []

    def wrap(handle: Callable[[IncomingMessage], HandledMessage]) -> Callable[[IncomingMessage], Any]:
        def record(message: IncomingMessage) -> HandledMessage:
            seen.append(message)
            if message.intent == "member_joined":
                return HandledMessage(replies=(Reply(text="Welcome!", private=True),))
            return handle(message)
        return record

    bot = make_bot(handle_wrapper=wrap)
    joined = {"type": "member_joined_channel", "user": "U_MEMBER", "channel": "C_TEST", "channel_type": "C",
              "team": TEAM, "event_ts": "1700000100.000100"}
    status, _, _ = bot.event(event_callback(TEAM, joined, event_id="EvJoin1"))
    assert status == 200
    bot.fake.wait_for_posts(1)
    time.sleep(0.3)
    [message] = [m for m in seen if m.intent == "member_joined"]
    assert (message.sender, message.conversation, message.text) == ("U_MEMBER", "C_TEST", "")
    assert [(p["channel"], p["text"]) for p in bot.fake.posts()] == [("U_MEMBER", "Welcome!")]
    # the bot's own join is not a newcomer
    own = {**joined, "user": "U_BOT", "event_ts": "1700000200.000100"}
    bot.event(event_callback(TEAM, own, event_id="EvJoin2"))
    time.sleep(0.5)
    assert len([m for m in seen if m.intent == "member_joined"]) == 1


BASE = {"user": {"id": "U_MEMBER", "username": "member"}, "team": {"id": TEAM}, "api_app_id": "A0FAKEAPP1"}


def _interact(bot: SlackBot, payload: dict[str, Any]) -> int:
    import json
    import urllib.parse

    form = urllib.parse.urlencode({"payload": json.dumps({**BASE, **payload})}).encode()
    status, seconds, _ = bot.post(form, content_type="application/x-www-form-urlencoded")
    assert seconds < 3.0
    return status


def _click(bot: SlackBot, action_id: str, value: str) -> int:
    return _interact(bot, {"type": "block_actions", "trigger_id": f"t-{action_id}", "channel": {"id": "D1"},
                           "response_url": bot.fake.new_response_url(),
                           "actions": [{"type": "button", "action_id": action_id, "value": value}]})


def _question_for_member(bot: SlackBot) -> int:
    """A question of U_HOST routed to U_MEMBER; returns the route id."""
    from bot.community import get_or_create_community
    from bot.db import session_scope
    from bot.members import member_for_sender
    from bot.models import MessageLog, QuestionRoute

    with session_scope(bot.core.engine) as session:
        community = get_or_create_community(session, "default", settings=bot.core.settings)
        assert community.id is not None
        answerer = member_for_sender(session, community=community, platform="slack", user_id="U_MEMBER")
        member_for_sender(session, community=community, platform="slack", user_id="U_HOST")
        question = MessageLog(community_id=community.id, platform="slack", sender="U_HOST",
                              conversation="C_TEST", needs_review=True,
                              text="who knows how SAFE notes convert?")
        session.add(question)
        session.flush()
        assert question.id is not None and answerer.id is not None
        route = QuestionRoute(community_id=community.id, message_log_id=question.id, member_id=answerer.id)
        session.add(route)
        session.flush()
        assert route.id is not None
        return route.id


def test_the_answer_button_opens_a_form_whose_answer_reaches_the_question(
    make_bot: Callable[..., SlackBot],
) -> None:
    from sqlmodel import select

    from bot.db import session_scope
    from bot.models import QuestionRoute, Resource

    bot = make_bot()
    route_id = _question_for_member(bot)
    assert _click(bot, "answer:0", str(route_id)) == 200
    [opened] = bot.fake.wait_for_calls("views.open", 1)
    view = opened["view"] if isinstance(opened["view"], dict) else json.loads(opened["view"])
    assert (view["callback_id"], view["private_metadata"]) == ("answer", str(route_id))
    answer = "At the next priced round, at the cap."
    values = {"answer": {"text": {"type": "plain_text_input", "value": answer}},
              "share": {"private": {"type": "checkboxes", "selected_options": []}}}
    state = {**view, "id": "V1", "team_id": TEAM, "state": {"values": values}}
    assert _interact(bot, {"type": "view_submission", "view": state}) == 200
    [dm] = bot.fake.wait_for_posts(1, channel="U_MEMBER")
    assert dm["text"]
    with session_scope(bot.core.engine) as session:
        saved = session.get(QuestionRoute, route_id)
        assert saved is not None and (saved.status, saved.answer) == ("answered", answer)
        [resource] = session.exec(select(Resource).where(Resource.source == "answer")).all()
        assert resource.description == answer


def test_introduction_buttons_run_the_members_intro_command(make_bot: Callable[..., SlackBot]) -> None:
    bot = make_bot()
    assert _click(bot, "intro_yes:0", "7") == 200
    [answer] = bot.fake.wait_for_responses(1, timeout=10)
    assert "7" in answer["text"]


def test_a_notification_with_a_picture_is_uploaded_to_the_members_dm(
    make_bot: Callable[..., SlackBot], tmp_path: Any
) -> None:
    picture = tmp_path / "confusion.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    bot = make_bot()
    reply = Reply(text="Retraining #3: promoted v0004", attachment=str(picture))
    bot.adapter.send(community="default", conversation="U_MEMBER", reply=reply)
    [upload] = bot.fake.uploads
    assert upload.completed and upload.filename == "confusion.png"
    assert upload.data == picture.read_bytes()
    assert upload.initial_comment == "Retraining #3: promoted v0004"
    assert len(upload.channels) == 1 and upload.channels[0].startswith("D")
    assert bot.fake.posts() == []
