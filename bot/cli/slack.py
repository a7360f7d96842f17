"""``communitybot slack manifest``: the Slack app manifest an organiser pastes into
https://api.slack.com/apps -> "Create New App" -> "From an app manifest".

The fields follow Slack's manifest schema (https://docs.slack.dev/reference/app-manifest, JSON schema
https://github.com/slackapi/manifest-schema, version 1): ``display_information``, ``features``
(``app_home``, ``bot_user``, ``slash_commands``), ``oauth_config`` (``redirect_urls``, ``scopes.bot``) and
``settings`` (``event_subscriptions``, ``interactivity``, ``socket_mode_enabled``, ...). Every request URL is
the adapter's one endpoint ``{public_url}/slack/events``; the OAuth redirect (installing in several
workspaces) is ``{public_url}/slack/oauth_redirect``. In Socket Mode Slack needs no URL at all.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from bot.cli.common import JsonOption, fail, print_json

slack_app = typer.Typer(help="Slack: the app manifest to create the bot's Slack app from.",
                        no_args_is_help=True)

#: Where the Slack adapter receives events, slash commands and interactive payloads, and OAuth redirects.
EVENTS_PATH = "/slack/events"
OAUTH_REDIRECT_PATH = "/slack/oauth_redirect"

#: The bot token scopes, each with why the bot needs it (shown as comments in the YAML manifest).
#: Left out on purpose: ``reactions:write`` (the bot answers in text and acknowledges within Slack's 3 s
#: over HTTP; it never reacts with emoji) and ``users:read.email`` (it never needs e-mail addresses).
BOT_SCOPES: dict[str, str] = {
    "app_mentions:read": "hear @mentions of the bot in channels it is in (app_mention event)",
    "channels:history": "read messages in public channels the bot is in (message.channels)",
    "groups:history": "read messages in private channels the bot is invited to (message.groups)",
    "im:history": "read direct messages to the bot (message.im)",
    "mpim:history": "read group direct messages the bot is added to (message.mpim)",
    "chat:write": "post answers, event announcements, reminders and digests",
    "commands": "receive /event, /rsvp, /profile, /resource, /bot and /privacy",
    "users:read": "display names and time zones of members; resolve a typed @name to a user",
    "im:write": "open a direct message for reminders to attendees and double opt-in introductions",
    "channels:read": "channel names for #channel in commands, digest and announcement channels, and who "
    "joined a channel (member_joined_channel, to welcome them)",
    "groups:read": "the same for private channels the bot is in",
    "files:write": "send a member their data as a JSON file (/privacy export)",
}

#: Events the bot subscribes to (each needs the scope named in :data:`BOT_SCOPES`; the last two none).
BOT_EVENTS: tuple[str, ...] = (
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "app_mention",
    "member_joined_channel",  # welcome newcomers (channels:read, groups:read)
    "app_uninstalled",  # forget a workspace's installation when the app is removed
    "tokens_revoked",  # stop using revoked tokens
)

#: Slash commands: (command, description, usage hint), after the command grammar in docs/DESIGN.
SLASH_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("/event", "Create, change, cancel and list community events",
     'create "TITLE" DATE [TIME] [--where PLACE] | edit ID ... | cancel ID | show ID | list'),
    ("/rsvp", "Say whether you are coming to an event", "ID [yes|no|maybe]"),
    ("/profile", "Tell the bot what you offer and need, or see your profile",
     "set offers: ...; needs: ...; skills: ... | show | link [CODE]"),
    ("/resource", "Share a resource with the community, or find one",
     'add "TITLE" URL [--tags a,b] [--desc TEXT] | list [QUERY]'),
    ("/bot", "Admins: bot status, retraining, rollback, labels and settings",
     "status | retrain [--dry-run] | rollback [VERSION] | review | label ... | config KEY VALUE"),
    ("/privacy", "See, export or delete what the bot keeps about you", "show | export | forget"),
)

#: Limits of Slack's manifest schema.
MAX_APP_NAME = 35


def check_public_url(url: str) -> str:
    """``url`` without a trailing slash, checked as the base URL Slack will call.

    Raises:
        ValueError: with the fix, when it is not ``https://`` with a host Slack can reach, carries a query
            or fragment, or already ends with ``/slack/events``.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            f"--public-url must be an https:// URL (Slack only calls HTTPS endpoints), got {url!r}. "
            "Serve the bot behind TLS (a reverse proxy such as Caddy or nginx, or a tunnel such as ngrok) "
            "and pass that address, e.g. --public-url https://bot.example.org, or use --socket-mode, which "
            "needs no public URL."
        )
    if parts.hostname in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        raise ValueError(
            f"--public-url {url!r} is this machine: Slack cannot reach it. Give the public https address of "
            "the bot (a tunnel such as ngrok gives one), or use --socket-mode."
        )
    if parts.query or parts.fragment:
        raise ValueError(f"--public-url {url!r} must not have a query or fragment; give the base URL only.")
    base = text.rstrip("/")
    if base.endswith(EVENTS_PATH):
        raise ValueError(
            f"--public-url is the base URL; the manifest adds {EVENTS_PATH} itself. "
            f"Use --public-url {base.removesuffix(EVENTS_PATH) or 'https://...'}."
        )
    return base


def build_manifest(*, name: str, public_url: str | None, socket_mode: bool) -> dict[str, Any]:
    """The app manifest as a dict (Slack schema version 1).

    Args:
        name: the app's and the bot user's display name (1 to 35 characters).
        public_url: the bot's public https base URL (checked with :func:`check_public_url`); required
            unless ``socket_mode``. With ``socket_mode`` it is optional and only adds the OAuth redirect.
        socket_mode: events over Socket Mode (needs an xapp- app token), so no request URLs.

    Raises:
        ValueError: a bad name, a bad URL, or no URL without Socket Mode; the message says what to pass.
    """
    name = name.strip()
    if not 1 <= len(name) <= MAX_APP_NAME:
        raise ValueError(f"--name must be 1 to {MAX_APP_NAME} characters (Slack's limit), got {name!r}.")
    if public_url is None and not socket_mode:
        raise ValueError(
            "give the bot's public https address, e.g. --public-url https://bot.example.org "
            f"(Slack sends events to it at {EVENTS_PATH}), or --socket-mode to connect out without one."
        )
    base = check_public_url(public_url) if public_url is not None else None
    request_url = None if socket_mode or base is None else base + EVENTS_PATH

    commands: list[dict[str, Any]] = []
    for command, description, usage in SLASH_COMMANDS:
        entry: dict[str, Any] = {"command": command}
        if request_url:
            entry["url"] = request_url
        # should_escape: Slack sends a typed @name / #channel as <@U123|name> / <#C123|name>, so the bot
        # gets ids rather than guessing from names (adapters.slack_markup decodes both forms).
        entry.update(description=description, usage_hint=usage, should_escape=True)
        commands.append(entry)

    events: dict[str, Any] = {"request_url": request_url} if request_url else {}
    events["bot_events"] = list(BOT_EVENTS)
    interactivity: dict[str, Any] = {"is_enabled": True}  # buttons in answers (RSVP, "ask around")
    if request_url:
        interactivity["request_url"] = request_url
    oauth: dict[str, Any] = {}
    if base is not None:
        oauth["redirect_urls"] = [base + OAUTH_REDIRECT_PATH]
    oauth["scopes"] = {"bot": list(BOT_SCOPES)}
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Finds members, resources and events in your community, runs events and RSVPs.",
            "background_color": "#1d3557",
        },
        "features": {
            # The Messages tab lets members DM the bot; without it Slack says messaging the app is off.
            "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": oauth,
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """``manifest`` as YAML (PyYAML's safe dumper, keys in order), each bot scope followed by a comment
    saying why the bot needs it."""
    import yaml

    text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=10_000)
    lines = []
    for line in text.splitlines():
        item = line.strip().removeprefix("- ")
        if line.lstrip().startswith("- ") and item in BOT_SCOPES:
            line = f"{line}  # {BOT_SCOPES[item]}"
        lines.append(line)
    header = ("# Slack app manifest of community-bot. Paste it at https://api.slack.com/apps:\n"
              "# Create New App -> From an app manifest.\n")
    return header + "\n".join(lines) + "\n"


@slack_app.command("manifest")
def manifest_command(
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", metavar="URL",
                     help="The bot's public https base URL, e.g. https://bot.example.org; Slack calls "
                          f"URL{EVENTS_PATH}. Required unless --socket-mode."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The app's and bot's display name.")] = "community-bot",
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Connect over Socket Mode (needs an xapp- app token); "
                                                 "no public URL needed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the Slack app manifest (YAML; --json for JSON) to paste into https://api.slack.com/apps."""
    try:
        manifest = build_manifest(name=name, public_url=public_url, socket_mode=socket_mode)
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    if as_json:
        print_json(manifest)
    else:
        typer.echo(manifest_yaml(manifest), nl=False)
