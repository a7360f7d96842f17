"""Several workspaces on one deployment: OAuth installs through bolt's pages into our database, each
workspace its own community and token, no workspace ever sees another's members, events or answers; an
uninstall stops every send to that workspace."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

import bot.app
from adapters.slack import SlackAdapter, serve_http
from adapters.slack_store import DatabaseInstallationStore, DatabaseOAuthStateStore, community_name_for
from bot.app import build_app
from bot.community import get_or_create_community
from bot.db import session_scope
from bot.models import Community, Event, Member, SlackInstallation, utcnow
from bot.settings import Settings
from matching.embedder import HashingEmbedder
from matching.search import IndexedMatcher
from tests.core.fakes import FakeClassifier
from tests.slack.conftest import SECRET, SlackBot, stop
from tests.slack.fake_slack import FakeSlack, event_callback, message_event

CLIENT_ID, CLIENT_SECRET = "111.222", "client-secret"


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> Iterator[SlackBot]:
    """An OAuth deployment with workspaces T_ONE and T_TWO installed through /slack/install."""
    classifier = FakeClassifier([("angel", "find_member", 0.95), ("event", "find_event", 0.95)])
    monkeypatch.setattr(bot.app, "load_classifier", lambda settings, **kw: classifier)
    monkeypatch.setattr(
        bot.app,
        "load_matcher",
        lambda settings, engine, **kw: IndexedMatcher(
            engine=engine, data_dir=settings.data_dir, embedder=HashingEmbedder(), default_threshold=0.2
        ),
    )
    with FakeSlack() as fake:
        fake.add_workspace(
            "T_ONE",
            bot_token="xoxb-one",
            bot_user_id="U_BOT1",
            bot_id="B_ONE",
            users=[{"id": "U_ANN", "name": "ann"}],
            channels=[{"id": "C_ONE", "name": "general"}],
        )
        fake.add_workspace(
            "T_TWO",
            bot_token="xoxb-two",
            bot_user_id="U_BOT2",
            bot_id="B_TWO",
            users=[{"id": "U_BO", "name": "bo"}],
            channels=[{"id": "C_TWO", "name": "general"}],
        )
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[call-arg]
        core = build_app(settings, progress=False)
        store = DatabaseInstallationStore(engine=core.engine, settings=settings)
        adapter = SlackAdapter(
            handle=core.handle,
            signing_secret=SECRET,
            installation_store=store,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            state_store=DatabaseOAuthStateStore(engine=core.engine),
            api_url=fake.base_url,
            interval=0.05,
        )
        server = serve_http(adapter, host="127.0.0.1", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        for team, code in (("T_ONE", "code-one"), ("T_TWO", "code-two")):
            fake.add_oauth_code(code, team, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
            _install(base, code)
        yield SlackBot(adapter, core, fake, f"{base}/slack/events", classifier)
        stop(adapter, server)
        core.engine.dispose()


def _install(base: str, code: str) -> None:
    """Walk bolt's OAuth pages as a browser would: /slack/install sets the state cookie and links to Slack's
    authorize page; Slack redirects back to /slack/oauth_redirect with the code and the state. (The cookie is
    ``Secure``, so it is carried by hand over this plain-HTTP loopback.)"""
    with urllib.request.urlopen(f"{base}/slack/install", timeout=10) as page:  # noqa: S310 - loopback
        html = page.read().decode()
        cookie = page.headers.get("Set-Cookie", "").split(";")[0]
    authorize = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', html)
    assert authorize is not None and cookie, html[:300]
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize.group(1).replace("&amp;", "&")).query)[
        "state"
    ][0]
    query = urllib.parse.urlencode({"code": code, "state": state})
    request = urllib.request.Request(f"{base}/slack/oauth_redirect?{query}", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as done:  # noqa: S310
        assert done.status == 200


def _add(bot_: SlackBot, team: str, *rows: Any) -> None:
    with session_scope(bot_.core.engine) as s:
        community = get_or_create_community(s, community_name_for(team), settings=bot_.core.settings)
        for row in rows:
            row.community_id = community.id
            s.add(row)


def test_oauth_installs_give_each_workspace_its_own_community_and_token(two: SlackBot) -> None:
    with session_scope(two.core.engine) as s:
        rows = {r.team_id: r for r in s.exec(select(SlackInstallation)).all()}
    assert set(rows) == {"T_ONE", "T_TWO"}
    assert (rows["T_ONE"].bot_token, rows["T_ONE"].bot_user_id) == ("xoxb-one", "U_BOT1")
    assert rows["T_ONE"].community_id != rows["T_TWO"].community_id
    with session_scope(two.core.engine) as s:  # the installer administers the new community
        community = s.get(Community, rows["T_ONE"].community_id)
        assert community is not None and community.settings["admins"] == ["U_INSTALLER"]


def test_two_workspaces_stay_isolated_members_events_answers(two: SlackBot) -> None:
    soon = utcnow().replace(microsecond=0)
    _add(
        two,
        "T_ONE",
        Member(display_name="Ann Angel", offers="angel investing in climate startups", community_id=0),
        Event(title="Angel office hours ONE", starts_at=soon.replace(year=soon.year + 1), community_id=0),
    )
    _add(
        two,
        "T_TWO",
        Member(display_name="Bo Angel", offers="angel investing in fintech startups", community_id=0),
        Event(title="Angel office hours TWO", starts_at=soon.replace(year=soon.year + 1), community_id=0),
    )
    for team, channel, user, bot_user, ts in (
        ("T_ONE", "C_ONE", "U_ANN", "U_BOT1", "1700000400.000100"),
        ("T_TWO", "C_TWO", "U_BO", "U_BOT2", "1700000400.000100"),
    ):
        msg = message_event(
            channel=channel, user=user, text=f"<@{bot_user}> who does angel investing?", ts=ts
        )
        status, _, _ = two.event(event_callback(team, msg, bot_user_id=bot_user))
        assert status == 200
    posts = two.fake.wait_for_posts(2, timeout=6)
    by_channel = {p["channel"]: p["text"] for p in posts}
    assert "Ann Angel" in by_channel["C_ONE"] and "Bo Angel" not in by_channel["C_ONE"]
    assert "Bo Angel" in by_channel["C_TWO"] and "Ann Angel" not in by_channel["C_TWO"]
    sent = [c for c in two.fake.calls if c.method == "chat.postMessage"]
    assert {(c.params["channel"], c.team_id) for c in sent} == {("C_ONE", "T_ONE"), ("C_TWO", "T_TWO")}
    with session_scope(two.core.engine) as s:  # each workspace's events belong to its own community only
        titles = {e.title: e.community_id for e in s.exec(select(Event)).all()}
    assert len(set(titles.values())) == 2


def test_uninstall_stops_every_send_to_that_workspace_only(two: SlackBot) -> None:
    status, _, _ = two.event(
        {
            "type": "event_callback",
            "team_id": "T_TWO",
            "api_app_id": "A0FAKEAPP1",
            "event": {"type": "app_uninstalled"},
            "event_id": "EvUN1",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T_TWO", "user_id": "U_BOT2", "is_bot": True}],
        }
    )
    assert status == 200
    deadline = time.monotonic() + 5
    while two.adapter.team("T_TWO") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert two.adapter.team("T_TWO") is None
    for team, channel, user, bot_user in (
        ("T_TWO", "C_TWO", "U_BO", "U_BOT2"),
        ("T_ONE", "C_ONE", "U_ANN", "U_BOT1"),
    ):
        msg = message_event(
            channel=channel, user=user, text=f"<@{bot_user}> any angel here?", ts="1700000500.000100"
        )
        two.event(event_callback(team, msg, bot_user_id=bot_user))
    posts = two.fake.wait_for_posts(1, timeout=5)
    time.sleep(0.5)
    assert [p["channel"] for p in two.fake.posts()] == ["C_ONE"] == [p["channel"] for p in posts]
    with session_scope(two.core.engine) as s:
        row = s.exec(select(SlackInstallation).where(SlackInstallation.team_id == "T_TWO")).one()
    assert row.revoked_at is not None and row.bot_token == ""
