"""``communitybot slack manifest``: a manifest Slack accepts, with every command, event and scope the bot
needs and its URLs built from ``--public-url``; bad URLs refused with the fix."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.slack import BOT_EVENTS, BOT_SCOPES

runner = CliRunner()

COMMANDS = ["/event", "/rsvp", "/profile", "/resource", "/bot", "/privacy"]
EVENTS = ["message.channels", "message.groups", "message.im", "message.mpim", "app_mention",
          "member_joined_channel", "app_uninstalled", "tokens_revoked"]
SCOPES = ["app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history",
          "chat:write", "commands", "users:read", "im:write", "channels:read", "groups:read"]
#: Top-level and section keys of Slack's manifest schema (v1) that the manifest may use.
SCHEMA_KEYS = {
    "": {"_metadata", "display_information", "features", "oauth_config", "settings"},
    "display_information": {"name", "description", "background_color", "long_description"},
    "features": {"app_home", "bot_user", "shortcuts", "slash_commands", "unfurl_domains"},
    "oauth_config": {"redirect_urls", "scopes"},
    "settings": {"event_subscriptions", "interactivity", "org_deploy_enabled", "socket_mode_enabled",
                 "token_rotation_enabled"},
}
COMMAND_KEYS = {"command", "url", "description", "usage_hint", "should_escape"}


def manifest(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["slack", "manifest", *args])
    assert result.exit_code == 0, result.output
    if "--json" in args:
        return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


def check_schema(doc: dict[str, Any]) -> None:
    """The parts of Slack's schema the manifest touches: known keys, lengths, patterns."""
    assert set(doc) <= SCHEMA_KEYS[""]
    for section in ("display_information", "features", "oauth_config", "settings"):
        assert set(doc[section]) <= SCHEMA_KEYS[section], section
    assert 1 <= len(doc["display_information"]["name"]) <= 35
    assert 1 <= len(doc["display_information"]["description"]) <= 140
    assert 1 <= len(doc["features"]["bot_user"]["display_name"]) <= 80
    for command in doc["features"]["slash_commands"]:
        assert set(command) <= COMMAND_KEYS and {"command", "description"} <= set(command)
        assert re.fullmatch(r"/[a-z]{1,31}", command["command"])
        assert 1 <= len(command["description"]) <= 2000 and 1 <= len(command["usage_hint"]) <= 1000
    assert len(set(doc["settings"]["event_subscriptions"]["bot_events"])) == len(BOT_EVENTS)
    assert all(len(scope) <= 50 for scope in doc["oauth_config"]["scopes"]["bot"])


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_manifest_parses_and_has_every_command_event_and_scope(fmt: str) -> None:
    doc = manifest("--public-url", "https://bot.example.org/", *(["--json"] if fmt == "json" else []))
    check_schema(doc)
    commands = doc["features"]["slash_commands"]
    assert [c["command"] for c in commands] == COMMANDS
    assert all(c["description"] and c["usage_hint"] for c in commands)
    assert doc["settings"]["event_subscriptions"]["bot_events"] == EVENTS
    scopes = doc["oauth_config"]["scopes"]["bot"]
    assert set(SCOPES) <= set(scopes) and len(scopes) == len(set(scopes))
    assert doc["features"]["bot_user"]["display_name"] == "community-bot"
    assert doc["features"]["app_home"]["messages_tab_enabled"] is True  # members can DM the bot


def test_urls_are_built_from_the_public_url() -> None:
    doc = manifest("--public-url", "https://bot.example.org/community/")
    events_url = "https://bot.example.org/community/slack/events"
    assert {c["url"] for c in doc["features"]["slash_commands"]} == {events_url}
    assert doc["settings"]["event_subscriptions"]["request_url"] == events_url
    assert doc["settings"]["interactivity"] == {"is_enabled": True, "request_url": events_url}
    assert doc["oauth_config"]["redirect_urls"] == ["https://bot.example.org/community/slack/oauth_redirect"]
    assert doc["settings"]["socket_mode_enabled"] is False


def test_socket_mode_needs_no_urls() -> None:
    doc = manifest("--socket-mode", "--name", "Founders Bot")
    check_schema(doc)
    assert doc["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in doc["settings"]["event_subscriptions"]
    assert doc["settings"]["interactivity"] == {"is_enabled": True}
    assert all("url" not in c for c in doc["features"]["slash_commands"])
    assert "redirect_urls" not in doc["oauth_config"]
    assert doc["display_information"]["name"] == doc["features"]["bot_user"]["display_name"] == "Founders Bot"


def test_yaml_explains_every_scope() -> None:
    result = runner.invoke(app, ["slack", "manifest", "--public-url", "https://bot.example.org"])
    for scope, why in BOT_SCOPES.items():
        assert f"- {scope}  # {why}" in result.stdout


def test_http_url_is_refused_with_the_fix() -> None:
    result = runner.invoke(app, ["slack", "manifest", "--public-url", "http://bot.example.org"])
    assert result.exit_code == 2
    assert "must be an https:// URL" in result.stderr
    assert "--socket-mode" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    ([], "--public-url https://bot.example.org"),
    (["--public-url", "https://localhost:3000"], "Slack cannot reach it"),
    (["--public-url", "https://bot.example.org/slack/events"], "Use --public-url https://bot.example.org."),
    (["--public-url", "bot.example.org"], "must be an https:// URL"),
    (["--socket-mode", "--name", "x" * 36], "1 to 35 characters"),
])
def test_other_bad_options_are_refused(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["slack", "manifest", *args])
    assert result.exit_code == 2
    assert message in result.stderr
