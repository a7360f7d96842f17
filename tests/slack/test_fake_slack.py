"""The loopback fake Slack Web API against the real ``slack_sdk.WebClient`` and slack-bolt ``App``, and the
inbound helpers (signatures, event and command payloads) against slack_sdk's own verifier and bolt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.slack.fake_slack import (
    APP_ID,
    FakeSlack,
    app_mention_event,
    event_callback,
    message_event,
    sign,
    slash_command_form,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN_A, TOKEN_B = "xoxb-team-a", "xoxb-team-b"
USERS_A = [{"id": f"UA{i}", "name": f"member{i}", "real_name": f"Member {i}", "display_name": f"m{i}"}
           for i in range(5)]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """WebClient sends even loopback calls to ``HTTP(S)_PROXY`` (it ignores ``NO_PROXY``)."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(users_page_size=3) as slack:
        slack.add_workspace("T_A", TOKEN_A, "U_BOT_A", "B_A", users=USERS_A,
                            channels=[{"id": "C_GENERAL", "name": "general"},
                                      {"id": "C_OLD", "name": "old", "is_archived": True},
                                      {"id": "C_OUT", "name": "outside", "is_member": False}],
                            team_name="Team A", domain="team-a")
        slack.add_workspace("T_B", TOKEN_B, "U_BOT_B", "B_B", users=[{"id": "UB0", "name": "other"}],
                            channels=[{"id": "C_B", "name": "general"}])
        yield slack


def _client(fake: FakeSlack, token: str | None = TOKEN_A, **kwargs: Any) -> WebClient:
    return WebClient(token=token, base_url=fake.base_url, timeout=5, **kwargs)


def test_auth_test_reports_the_workspace_of_the_token(fake: FakeSlack) -> None:
    answer = _client(fake).auth_test()
    assert answer.status_code == 200
    assert (answer["team_id"], answer["team"], answer["user_id"], answer["bot_id"]) == ("T_A", "Team A",
                                                                                         "U_BOT_A", "B_A")
    assert answer["url"] == "https://team-a.slack.com/"
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/api/"
    assert [(c.method, c.token, c.team_id, c.ok) for c in fake.calls] == [("auth.test", TOKEN_A, "T_A", True)]


def test_post_message_is_answered_like_slack_and_recorded(fake: FakeSlack) -> None:
    client = _client(fake)
    first = client.chat_postMessage(channel="C_GENERAL", text="hello", thread_ts="1700000000.000100")
    second = client.chat_postMessage(channel="#general", text="again", unfurl_links=False)
    assert first["ok"] and first["channel"] == "C_GENERAL" and second["channel"] == "C_GENERAL"
    assert float(second["ts"]) > float(first["ts"])
    message = first["message"]
    assert (message["text"], message["user"], message["bot_id"], message["thread_ts"]) == (
        "hello", "U_BOT_A", "B_A", "1700000000.000100")
    # slack_sdk sends chat.postMessage as JSON: values keep their types
    assert fake.posts() == [{"channel": "C_GENERAL", "text": "hello", "thread_ts": "1700000000.000100"},
                            {"channel": "#general", "text": "again", "unfurl_links": False}]
    assert fake.posts("C_GENERAL") == fake.posts()[:1]
    assert fake.calls[0].at <= fake.calls[1].at


def test_wait_for_posts_wakes_on_a_post_from_another_thread_and_times_out_with_a_summary(
    fake: FakeSlack,
) -> None:
    client = _client(fake)
    timer = threading.Timer(0.05, lambda: client.chat_postMessage(channel="C_GENERAL", text="late"))
    timer.start()
    assert [p["text"] for p in fake.wait_for_posts(1, timeout=3)] == ["late"]
    timer.join()
    with pytest.raises(TimeoutError, match="1 of 2 chat.postMessage"):
        fake.wait_for_posts(2, timeout=0.1)


def test_users_list_pages_through_cursors(fake: FakeSlack) -> None:
    client = _client(fake)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = client.users_list(cursor=cursor) if cursor else client.users_list()
        pages += 1
        seen.extend(page["members"])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    # five people, then the bot user and Slackbot, as Slack lists them; pages of 3
    assert pages == 3
    assert [m["id"] for m in seen] == ["UA0", "UA1", "UA2", "UA3", "UA4", "U_BOT_A", "USLACKBOT"]
    one = seen[1]
    assert (one["name"], one["real_name"], one["profile"]["display_name"]) == ("member1", "Member 1", "m1")
    assert [m["is_bot"] for m in seen[-2:]] == [True, False]  # Slackbot is famously not is_bot
    # a smaller limit wins; slack_sdk's response iterator follows the cursors itself
    assert [len(p["members"]) for p in client.users_list(limit=2)] == [2, 2, 2, 1]
    with pytest.raises(SlackApiError) as bad:
        client.users_list(cursor="not-a-cursor")
    assert bad.value.response["error"] == "invalid_cursor"


def test_rate_limit_answers_429_with_retry_after_then_recovers(fake: FakeSlack) -> None:
    client = _client(fake)
    fake.rate_limit("chat.postMessage", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel="C_GENERAL", text="hi")
    response = limited.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "7"
    client.chat_postMessage(channel="C_GENERAL", text="hi")
    assert len(fake.posts()) == 1
    assert [(c.status, c.error) for c in fake.calls] == [(429, "ratelimited"), (200, None)]


def test_the_opt_in_rate_limit_retry_handler_waits_and_retries(fake: FakeSlack,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("slack_sdk.http_retry.builtin_handlers.random.random", lambda: 0.0)
    client = _client(fake, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    fake.rate_limit("chat.postMessage", times=1, retry_after=0)
    assert client.chat_postMessage(channel="C_GENERAL", text="hi")["ok"]
    assert [c.status for c in fake.calls] == [429, 200] and len(fake.posts()) == 1


def test_channel_failures_surface_as_slack_api_errors(fake: FakeSlack) -> None:
    client = _client(fake)
    fake.fail_channel("C_GONE", "not_in_channel")
    errors = {}
    for channel in ("C_GONE", "C_OLD", "C_OUT"):
        with pytest.raises(SlackApiError) as failed:
            client.chat_postMessage(channel=channel, text="hi")
        assert failed.value.response.status_code == 200
        errors[channel] = failed.value.response["error"]
    assert errors == {"C_GONE": "not_in_channel", "C_OLD": "is_archived", "C_OUT": "not_in_channel"}
    client.chat_postMessage(channel="C_GENERAL", text="still fine")
    fake.fail_channel("C_GONE", None)
    client.chat_postMessage(channel="C_GONE", text="back")
    assert [p["channel"] for p in fake.posts()] == ["C_GENERAL", "C_GONE"]
    assert len(fake.calls_to("chat.postMessage", ok=False)) == 3


def test_each_token_sees_only_its_own_workspace_and_bad_tokens_fail(fake: FakeSlack) -> None:
    a = [m["id"] for m in _client(fake, TOKEN_A).users_list(limit=100)["members"]]
    b = [m["id"] for m in _client(fake, TOKEN_B).users_list()["members"]]
    assert "UB0" not in a and b == ["UB0", "U_BOT_B", "USLACKBOT"]
    with pytest.raises(SlackApiError) as missing:
        _client(fake, TOKEN_B).users_info(user="UA1")
    assert missing.value.response["error"] == "user_not_found"
    for token in ("xoxb-nobody", TOKEN_B):
        fake.revoke(TOKEN_B)
        with pytest.raises(SlackApiError) as denied:
            _client(fake, token).auth_test()
        assert denied.value.response.status_code == 200 and denied.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as anonymous:
        _client(fake, None).auth_test()
    assert anonymous.value.response["error"] == "not_authed"
    assert _client(fake, TOKEN_A).auth_test()["team_id"] == "T_A"


def test_conversations_users_update_ephemeral_and_permalink(fake: FakeSlack) -> None:
    client = _client(fake)
    dm = client.conversations_open(users="UA1")["channel"]["id"]
    assert dm == "DA1" and client.conversations_open(users=["UA1"])["already_open"]
    assert client.conversations_info(channel=dm)["channel"]["is_im"]
    assert client.conversations_info(channel="C_GENERAL")["channel"]["name"] == "general"
    posted = client.chat_postMessage(channel="UA1", text="psst")  # a user id posts into the DM
    assert posted["channel"] == dm
    updated = client.chat_update(channel=dm, ts=posted["ts"], text="edited")
    assert updated["text"] == "edited" and updated["message"]["edited"]["user"] == "U_BOT_A"
    assert client.chat_postEphemeral(channel="C_GENERAL", user="UA2", text="only you")["message_ts"]
    link = client.chat_getPermalink(channel="C_GENERAL", message_ts="1700000000.000100")["permalink"]
    assert link == "https://team-a.slack.com/archives/C_GENERAL/p1700000000000100"
    assert client.users_info(user="UA3")["user"]["profile"]["display_name"] == "m3"
    failing = ((lambda: client.conversations_info(channel="C_NOPE"), "channel_not_found"),
               (lambda: client.chat_update(channel="C_GENERAL", ts="1.2", text="x"), "message_not_found"),
               (lambda: client.api_call("bogus.method"), "unknown_method"))
    for call, error in failing:
        with pytest.raises(SlackApiError) as failed:
            call()
        assert failed.value.response["error"] == error


def test_files_upload_v2_goes_through_the_external_upload_flow(fake: FakeSlack) -> None:
    done = _client(fake).files_upload_v2(channel="C_GENERAL", content="a,b\n1,2\n", filename="rsvps.csv",
                                         title="RSVPs", initial_comment="the list")
    assert done["file"]["name"] == "rsvps.csv"
    [upload] = fake.uploads
    assert (upload.data, upload.title, upload.channels, upload.initial_comment, upload.completed) == (
        b"a,b\n1,2\n", "RSVPs", ["C_GENERAL"], "the list", True)
    assert [c.method for c in fake.calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_oauth_code_is_exchanged_once_for_a_bot_token(fake: FakeSlack) -> None:
    fake.add_oauth_code("code-1", "T_B", access_token="xoxb-fresh-b", client_id="111.222", client_secret="s3")
    anonymous = _client(fake, None)
    with pytest.raises(SlackApiError) as wrong_secret:
        anonymous.oauth_v2_access(client_id="111.222", client_secret="nope", code="code-1")
    assert wrong_secret.value.response["error"] == "bad_client_secret"
    answer = anonymous.oauth_v2_access(client_id="111.222", client_secret="s3", code="code-1")
    assert (answer["access_token"], answer["token_type"], answer["bot_user_id"], answer["app_id"]) == (
        "xoxb-fresh-b", "bot", "U_BOT_B", APP_ID)
    assert answer["team"] == {"id": "T_B", "name": "T_B"} and "chat:write" in answer["scope"].split(",")
    assert _client(fake, "xoxb-fresh-b").auth_test()["team_id"] == "T_B"
    with pytest.raises(SlackApiError) as reused:
        anonymous.oauth_v2_access(client_id="111.222", client_secret="s3", code="code-1")
    assert reused.value.response["error"] == "invalid_code"


def test_sign_verifies_with_slack_sdk_and_a_wrong_secret_or_old_timestamp_does_not() -> None:
    body = json.dumps(event_callback("T_A", message_event("C1", "U1", "hi", "1700000000.000100"))).encode()
    headers = sign(body, SECRET)
    ts, signature = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    assert signature.startswith("v0=") and abs(int(ts) - time.time()) < 5
    assert SignatureVerifier(SECRET).is_valid(body, ts, signature)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid(body, ts, signature)
    assert not SignatureVerifier(SECRET).is_valid(body + b" ", ts, signature)
    old = sign(body, SECRET, timestamp=int(time.time()) - 6 * 60)
    assert not SignatureVerifier(SECRET).is_valid_request(body, old)


def test_payload_builders_have_slacks_shapes() -> None:
    envelope = event_callback("T_A", app_mention_event("C1", "U1", "<@U_BOT> hi", "1700000000.000100"),
                              event_id="Ev1", event_time=1700000000)
    assert envelope["type"] == "event_callback" and envelope["event_id"] == "Ev1"
    assert envelope["authorizations"][0]["team_id"] == "T_A" and envelope["api_app_id"] == APP_ID
    assert envelope["event"]["type"] == "app_mention" and envelope["event"]["event_ts"] == "1700000000.000100"
    bot = message_event("D1", None, "x", "1.2", bot_id="B9", subtype="bot_message")
    assert "user" not in bot and "client_msg_id" not in bot and bot["channel_type"] == "im"
    reply = message_event("C1", "U1", "re", "1.3", thread_ts="1.1")
    assert reply["thread_ts"] == "1.1" and reply["client_msg_id"]
    form = slash_command_form("/event", 'create "Spring Meetup" 2027-05-10', "T_A", "C1", "U1", "ann",
                              "http://x/response/1", "trig")
    assert b"command=%2Fevent" in form and b"text=create+%22Spring+Meetup%22" in form
    fields = {k: v[0] for k, v in parse_qs(form.decode(), keep_blank_values=True).items()}
    assert (fields["team_id"], fields["user_name"], fields["response_url"]) == ("T_A", "ann", "http://x/response/1")


def test_response_urls_record_what_is_posted_and_refuse_a_sixth_use(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    webhook = WebhookClient(url, timeout=5)
    timer = threading.Timer(0.05, lambda: webhook.send(text="later", response_type="ephemeral"))
    timer.start()
    assert fake.wait_for_responses(1, timeout=3) == [{"text": "later", "response_type": "ephemeral"}]
    timer.join()
    statuses = [webhook.send(text=str(i)).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 404]
    assert len(fake.responses()) == 5


def test_slow_delays_the_answer_only_for_that_method(fake: FakeSlack) -> None:
    client = _client(fake)
    fake.slow("chat.postMessage", 0.3, times=1)
    start = time.monotonic()
    client.auth_test()
    fast = time.monotonic() - start
    client.chat_postMessage(channel="C_GENERAL", text="slow")
    slow = time.monotonic() - start - fast
    assert fast < 0.25 <= slow


def test_a_real_bolt_app_handles_signed_events_and_commands_through_the_fake(fake: FakeSlack) -> None:
    app = App(client=_client(fake), signing_secret=SECRET, process_before_response=True)

    @app.event("app_mention")
    def mention(event: dict[str, Any], say: Any) -> None:
        say(text="hello", thread_ts=event["ts"])

    @app.command("/event")
    def command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(f"got {command['text']}")

    def dispatch(body: bytes, content_type: str, secret: str = SECRET) -> int:
        headers: dict[str, str | Sequence[str]] = {"content-type": content_type, **sign(body, secret)}
        return app.dispatch(BoltRequest(body=body.decode(), headers=headers)).status

    mention_body = json.dumps(event_callback("T_A", app_mention_event("C_GENERAL", "UA1", "<@U_BOT_A> hi",
                                                                      "1700000000.000100"))).encode()
    assert dispatch(mention_body, "application/json", secret="wrong") == 401
    assert dispatch(mention_body, "application/json") == 200
    # bolt's per-request client carries the event's team_id, and slack_sdk adds it to every call's params
    assert fake.posts() == [{"channel": "C_GENERAL", "text": "hello", "thread_ts": "1700000000.000100",
                             "team_id": "T_A"}]
    form = slash_command_form("/event", "list", "T_A", "C_GENERAL", "UA1", "member1", fake.new_response_url())
    assert dispatch(form, "application/x-www-form-urlencoded") == 200
    assert fake.responses() == [{"text": "got list"}]
