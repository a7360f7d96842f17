"""Socket Mode: the real slack-sdk Socket Mode client against a loopback fake WebSocket; events and slash
commands are acknowledged in under 3 s and answered through the Web API / response_url."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.slack.conftest import TEAM, SlackBot
from tests.slack.fake_slack import event_callback, message_event
from tests.slack.fake_socket_mode import FakeSocketMode

APP_TOKEN = "xapp-1-test"


def test_events_and_commands_over_socket_mode(make_bot: Callable[..., SlackBot]) -> None:
    bot = make_bot()
    with FakeSocketMode() as socket:
        bot.fake.socket_mode(APP_TOKEN, socket.url)
        handler = bot.adapter.socket_mode_handler(APP_TOKEN)
        threading.Thread(target=handler.connect, daemon=True).start()
        socket.wait_connected()
        msg = message_event(channel="C_TEST", user="U_MEMBER", text="<@U_BOT> any meetup soon?",
                            ts="1700000600.000100")
        event_id = socket.send("events_api", event_callback(TEAM, msg, event_id="EvSock1"))
        assert socket.wait_ack(event_id) < 3.0
        post = bot.fake.wait_for_posts(1, timeout=5)[0]
        assert (post["channel"], post["thread_ts"]) == ("C_TEST", "1700000600.000100")
        command = {"command": "/event", "text": 'create "Socket night" 2027-05-10', "team_id": TEAM,
                   "channel_id": "C_EVENTS", "user_id": "U_HOST", "user_name": "host_name",
                   "response_url": bot.fake.new_response_url(), "trigger_id": "sock-trigger-1"}
        command_id = socket.send("slash_commands", command)
        assert socket.wait_ack(command_id) < 3.0
        response = bot.fake.wait_for_responses(1, timeout=5)[0]
        assert "Socket night" in str(response["text"])
        handler.close()
