"""The Slack adapter: a slack-bolt app that turns Slack events and slash commands into bot messages.

Inbound (Events API over HTTP, every request's signature verified by bolt with the signing secret and its
5-minute timestamp window; or Socket Mode):

* ``message`` and ``app_mention`` events become :class:`bot.messages.IncomingMessage` with the platform key
  ``slack:<team>:<channel>:<ts>``, so Slack's retries, the same message arriving as both ``message`` and
  ``app_mention``, a restart or another process never produce a second reply: the router claims the key in
  the database first (case S1). What is not for the bot is dropped before the core sees it: messages with a
  ``bot_id`` (ours or another app's), our own user id (learned from ``auth.test``), any subtype (edits,
  deletions, joins, unfurls), and events without a user or text (case S3).
* Slash commands ``/event /rsvp /profile /resource /bot /privacy`` are acknowledged at once and run after the
  acknowledgement on bolt's listener threads (lazy listeners), answering through ``response_url`` (case S2):
  Slack's 3-second deadline never waits for the database or the model.
* Buttons: RSVP buttons run ``/rsvp ID`` (``/rsvp ID no``) for the member who clicked; "helpful / not
  helpful" buttons are handled like that member's feedback message.
* ``app_uninstalled`` / ``tokens_revoked`` stop every send to that workspace.

Outbound: replies go in the asker's thread (``thread_ts`` = the thread's root, or the message itself at a
channel root; DMs are answered at their root, case S4), text escaped for Slack (``& < >``), with Block Kit
buttons when a reply has them, through a paced :class:`adapters.outbox.Outbox` (one message per second
per channel, 429 ``Retry-After`` honoured, ``not_in_channel``/archived channels disabled with a log line).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.error import URLError
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import Ack, App, BoltContext, Respond
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.state_store import OAuthStateStore

from adapters.outbox import Outbox, RateLimited, TargetGone
from adapters.slack_markup import decode, escape, strip_mention, user_display_name
from adapters.slack_store import DatabaseInstallationStore
from bot.commands import button_command
from bot.commands.answer import ANSWER_ACTION
from bot.delivery import Delivery, reply_thread
from bot.messages import Button, HandledMessage, IncomingMessage, Reply
from bot.settings import Settings

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

PLATFORM = "slack"
SLASH_COMMANDS = ("/event", "/rsvp", "/profile", "/resource", "/bot", "/privacy")
"""The slash commands the app registers (the same command layer as the console)."""
GONE_ERRORS = frozenset(
    {
        "not_in_channel",
        "is_archived",
        "channel_not_found",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
        "missing_scope",
        "restricted_action",
    }
)
"""Web API errors after which a channel (or workspace) cannot take messages: no retry, disable it."""
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "chat:write",
    "commands",
    "users:read",
    "im:write",
    "channels:read",
    "groups:read",
)
"""Bot token scopes requested at install (the manifest lists the same, with the reason for each)."""
JOINED_INTENT = "member_joined"
"""The intent of the message a join becomes (the core's onboarding welcomes the newcomer)."""
BUTTON_ACTIONS = re.compile(
    r"^(rsvp|rsvp_no|feedback|intro_yes|intro_no|intro_snooze|intro_helped|intro_not_helped)(:\d+)?$"
)
"""Buttons run as the clicking member's command (:func:`bot.commands.button_command`) or feedback."""
ANSWER_VIEW = "answer"
"""The callback id of the answer form."""
PASSED_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
"""Message subtypes that are still a person talking; every other subtype is dropped."""
REPLY_EVENT = "communitybot_reply"
"""The metadata event type of a journalled reply (its ``event_payload`` is ``{"key": ...}``)."""

Handle = Callable[[IncomingMessage], HandledMessage]


@dataclass(frozen=True, slots=True)
class _Post:
    """One chat.postMessage (or, with an ``attachment``, one file upload with the text as its comment):
    where, what, and which token."""

    team_id: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    attachment: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class _Team:
    """A workspace the adapter serves: its community, its Web API client and the bot's own ids there."""

    community: str
    client: WebClient
    bot_user_id: str
    bot_id: str


class SlackAdapter:
    """Connects a bolt :class:`slack_bolt.App` to the bot core, for one workspace or many.

    One workspace: give ``bot_token`` and ``community``. Several: give ``installation_store`` (and
    ``client_id``/``client_secret``/``state_store`` for bolt's OAuth pages ``/slack/install`` and
    ``/slack/oauth_redirect``); each installed workspace is served with its own token and community, and a
    workspace that is not installed (or uninstalled) is ignored.

    Args:
        handle: the core (``bot.app.App.handle``): one message in, what the bot did out; never raises.
        signing_secret: the Slack app's signing secret (inbound requests are verified with it).
        bot_token: the xoxb- token of a single workspace.
        community: the community that single workspace belongs to.
        installation_store: :class:`adapters.slack_store.DatabaseInstallationStore` for OAuth installs.
        client_id, client_secret, state_store: the OAuth app credentials and state store.
        api_url: Web API base URL (``https://slack.com/api/``; tests point it at a loopback fake).
        interval: seconds between two posts to one channel.
        delivery: durable delivery (:mod:`bot.delivery`, serving this adapter's platform): when given, a
            message event is acknowledged only after the core claimed it (bolt's
            ``process_before_response``; a process that dies before the claim never acknowledged the
            event, so Slack delivers it again) and handled on the delivery's workers afterwards; replies
            are posted tagged with their journal key in the message metadata and recorded sent, and
            :meth:`redeliver` finds a dead process's replies that did reach Slack.

    Raises:
        ValueError: no signing secret, or neither a bot token nor an installation store, or Slack refuses
            (or cannot be reached to check) the bot token: the message says what to check.
    """

    def __init__(
        self,
        *,
        handle: Handle,
        signing_secret: str,
        bot_token: str = "",
        community: str = "",
        installation_store: DatabaseInstallationStore | None = None,
        client_id: str = "",
        client_secret: str = "",
        state_store: OAuthStateStore | None = None,
        api_url: str = "https://slack.com/api/",
        interval: float = 1.0,
        delivery: Delivery | None = None,
    ) -> None:
        if not signing_secret:
            raise ValueError(
                "Slack needs the app's signing secret: set COMMUNITYBOT_SLACK_SIGNING_SECRET "
                "(Basic Information > App Credentials in the app's settings)"
            )
        if not bot_token and installation_store is None:
            raise ValueError(
                "Slack needs a bot token: set COMMUNITYBOT_SLACK_BOT_TOKEN (OAuth & Permissions "
                "> Bot User OAuth Token, starts with xoxb-), or COMMUNITYBOT_SLACK_CLIENT_ID "
                "and COMMUNITYBOT_SLACK_CLIENT_SECRET to install in several workspaces"
            )
        self._handle = handle
        self._delivery = delivery
        self._api_url = api_url
        self._store = installation_store
        self._lock = threading.Lock()
        self._teams: dict[str, _Team] = {}
        self._uninstalled: set[str] = set()
        self._names: dict[tuple[str, str], str] = {}
        self.team_id = ""
        if bot_token:
            client = WebClient(token=bot_token, base_url=api_url)
            try:
                identity = client.auth_test()  # our own ids: never answer ourselves (case S3)
            except SlackApiError as exc:
                raise ValueError(
                    f"Slack refused the bot token ({exc.response.get('error')}): check "
                    "COMMUNITYBOT_SLACK_BOT_TOKEN (OAuth & Permissions > Bot User OAuth Token) and "
                    "that the app is still installed"
                ) from exc
            except (OSError, URLError) as exc:
                raise ValueError(
                    f"cannot reach Slack at {api_url} to check the bot token ({exc}); check the "
                    "network, proxy settings or COMMUNITYBOT_SLACK_API_URL"
                ) from exc
            self.team_id = str(identity["team_id"])
            self._teams[self.team_id] = _Team(
                community or "default", client, str(identity["user_id"]), str(identity.get("bot_id") or "")
            )
        self.outbox = Outbox(self._send, interval=interval, name="slack-outbox")
        # listeners run on bolt's threads after the acknowledgement (with durable delivery: message events
        # are acknowledged once the core has claimed and handled them); we filter our own events ourselves
        common: dict[str, Any] = {
            "signing_secret": signing_secret,
            "process_before_response": delivery is not None,
            "ignoring_self_events_enabled": False,
            "raise_error_for_unhandled_request": False,
        }
        if installation_store is not None:
            oauth = None
            if client_id and client_secret:
                oauth = OAuthSettings(
                    client_id=client_id,
                    client_secret=client_secret,
                    scopes=list(BOT_SCOPES),
                    installation_store=installation_store,
                    installation_store_bot_only=True,
                    state_store=state_store,
                )
            self.app = App(
                **common,
                installation_store=installation_store,
                installation_store_bot_only=True,
                oauth_settings=oauth,
                client=WebClient(base_url=api_url),
            )
        else:
            self.app = App(  # the client carries the bot token (bolt warns when given both)
                **common,
                client=self._teams[self.team_id].client,
                token_verification_enabled=False,
            )
        self._register()

    @property
    def bot_user_id(self) -> str:
        """The bot's user id in the single workspace ("" with OAuth installs)."""
        team = self._teams.get(self.team_id)
        return team.bot_user_id if team else ""

    def team(self, team_id: str) -> _Team | None:
        """The workspace ``team_id`` as served now, ``None`` when it is not (or no longer) installed."""
        with self._lock:
            if team_id in self._uninstalled:
                return None
            known = self._teams.get(team_id)
        if known is not None or self._store is None:
            return known
        served = self._store.served(team_id)
        if served is None:
            return None
        row, community = served
        team = _Team(
            community, WebClient(token=row.bot_token, base_url=self._api_url), row.bot_user_id, row.bot_id
        )
        with self._lock:
            self._teams[team_id] = team
        return team

    # --- bolt wiring ------------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_message)
        app.event("member_joined_channel")(self._on_joined)
        app.event("app_uninstalled")(self._on_uninstalled)
        app.event("tokens_revoked")(self._on_uninstalled)
        for command in SLASH_COMMANDS:
            app.command(command)(ack=_ack_now, lazy=[self._run_command])
        app.action(BUTTON_ACTIONS)(ack=_ack_now, lazy=[self._on_button])
        app.action(re.compile(rf"^{ANSWER_ACTION}(:\d+)?$"))(self._on_answer_button)
        app.view(ANSWER_VIEW)(ack=_ack_now, lazy=[self._on_answer_submitted])

    # --- inbound ----------------------------------------------------------------------------------------

    def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        """A message or app_mention event: drop what is not a person talking, else hand it to the core."""
        team_id = str(body.get("team_id") or context.team_id or self.team_id)
        message = self.incoming(event, team_id=team_id)
        if message is None:
            return
        name = self.display_name(team_id, message.sender)
        if name:
            message = replace(message, sender_name=name)
        if self._delivery is not None and self._delivery.durable(message):
            # claimed before bolt acknowledges the event; handled on the delivery's workers after
            early = self._delivery.accept(message)
            if early is None:
                self._delivery.submit(message, self)
            elif early.replies:
                self.respond(message, early.replies)
            return
        result = self._handle(message)
        if result.duplicate:
            return
        self.respond(message, result.replies)

    def respond(self, message: IncomingMessage, replies: Sequence[Reply]) -> None:
        """Queue ``replies`` to ``message`` (a message of :meth:`incoming`): in the thread of its root; a
        channel-root question gets a thread of its own; DMs stay flat (case S4)."""
        team_id = message.platform_key.split(":")[1] if message.platform_key else self.team_id
        thread_ts = reply_thread(message) or None
        for reply in replies:
            self.post(team_id=team_id, channel=message.conversation, reply=reply, thread_ts=thread_ts)

    def incoming(self, event: dict[str, Any], *, team_id: str) -> IncomingMessage | None:
        """The :class:`IncomingMessage` of a ``message``/``app_mention`` event, or ``None`` when it is not
        for the core: a bot's or our own message, an edit/deletion/join or any other subtype, no user, no
        channel, no text (never turned into a default question)."""
        team = self.team(team_id)
        if team is None:  # a workspace we do not serve (never installed, or uninstalled)
            return None
        subtype = event.get("subtype")
        if subtype and (not isinstance(subtype, str) or subtype not in PASSED_SUBTYPES):  # may be a list
            return None
        user = event.get("user")
        if event.get("bot_id") or event.get("bot_profile") or not user or user == team.bot_user_id:
            return None
        raw = event.get("text")
        channel = event.get("channel")
        ts = event.get("ts")
        if not all(isinstance(value, str) and value for value in (user, channel, ts)):  # not as Slack writes
            return None
        if not isinstance(raw, str) or not raw.strip():
            return None
        mentioned = event.get("type") == "app_mention" or f"<@{team.bot_user_id}" in raw
        text = decode(strip_mention(raw, team.bot_user_id)).text.strip()
        if not text:
            return None
        is_direct = event.get("channel_type") == "im" or str(channel).startswith("D")
        return IncomingMessage(
            platform=PLATFORM,
            community=team.community,
            conversation=str(channel),
            sender=str(user),
            text=text,
            received_at=_ts_time(str(ts)),
            thread=thread if isinstance(thread := event.get("thread_ts"), str) and thread else None,
            is_direct=is_direct,
            mentions_bot=mentioned,
            platform_key=f"{PLATFORM}:{team_id}:{channel}:{ts}",
        )

    def display_name(self, team_id: str, user_id: str) -> str:
        """The member's Slack display name (else real name, else handle), from ``users.info``, cached per
        workspace; ``""`` when Slack does not say (the core then keeps what it knows)."""
        key = (team_id, user_id)
        with self._lock:
            if key in self._names:
                return self._names[key]
        team = self.team(team_id)
        name = ""
        if team is not None:
            try:
                name = user_display_name(team.client.users_info(user=user_id).get("user") or {})
            except SlackApiError as exc:
                log.info("slack: no name for %s in %s (%s)", user_id, team_id, exc.response.get("error"))
        with self._lock:
            self._names[key] = name
        return name

    def _run_command(self, command: dict[str, Any], respond: Respond) -> None:
        """A slash command after its acknowledgement: run it through the core, answer via response_url."""
        team = self.team(str(command.get("team_id") or self.team_id))
        if team is None:
            respond(
                text="This workspace has not installed the bot (or uninstalled it).",
                response_type="ephemeral",
            )
            return
        text = f"{command.get('command', '')} {decode(command.get('text') or '').text}".strip()
        message = IncomingMessage(
            platform=PLATFORM,
            community=team.community,
            conversation=str(command.get("channel_id", "")),
            sender=str(command.get("user_id", "")),
            text=text,
            received_at=datetime.now(UTC),
            sender_name=str(command.get("user_name", "")),
            is_direct=True,
            platform_key=f"{PLATFORM}:{command.get('team_id', '')}:command:{command.get('trigger_id', '')}"
            if command.get("trigger_id")
            else None,
        )
        result = self._handle(message)
        if result.duplicate:
            return
        for reply in result.replies or (Reply(text="Done."),):
            respond(
                text=escape(reply.text),
                blocks=render_blocks(reply),
                response_type="ephemeral",
                replace_original=False,
            )

    def _on_button(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """An RSVP, introduction or feedback button: run it as the clicking member's command or message."""
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        team = self.team(str((body.get("team") or {}).get("id") or self.team_id))
        if team is None:
            return
        kind, value = str(action.get("action_id", "")).split(":")[0], str(action.get("value", ""))
        intent = None
        command = button_command(kind, value)
        if command is not None:
            text = command
        elif kind == "feedback":  # the button states the intent, the text is what the review queue shows
            text, intent = ("helpful" if value == "helpful" else "not helpful"), "feedback"
        else:
            log.info("slack: a %s button with the value %r stands for nothing", kind, value)
            return
        message = IncomingMessage(
            platform=PLATFORM,
            community=team.community,
            conversation=channel,
            sender=user,
            text=text,
            received_at=datetime.now(UTC),
            is_direct=True,
            intent=intent,
        )
        result = self._handle(message)
        for reply in result.replies:
            respond(text=escape(reply.text), response_type="ephemeral", replace_original=False)

    def _on_answer_button(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """The "Answer" button of a routed question: open a form for the answer at once (the trigger id is
        valid for 3 seconds); its submission runs ``/answer ID ...`` as the member."""
        ack()
        team = self.team(str((body.get("team") or {}).get("id") or self.team_id))
        route = str(action.get("value", ""))
        if team is None or not route.isdigit():
            return
        try:
            team.client.views_open(trigger_id=str(body.get("trigger_id", "")), view=answer_view(route))
        except SlackApiError as exc:
            log.warning("slack: could not open the answer form (%s)", exc.response.get("error"))

    def _on_answer_submitted(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The answer form was sent: run it as the member's ``/answer`` and tell them what happened."""
        team_id = str((body.get("team") or {}).get("id") or view.get("team_id") or self.team_id)
        team = self.team(team_id)
        user = str((body.get("user") or {}).get("id", ""))
        route = str(view.get("private_metadata", ""))
        values = (view.get("state") or {}).get("values") or {}
        text = str(((values.get("answer") or {}).get("text") or {}).get("value") or "").strip()
        options = ((values.get("share") or {}).get("private") or {}).get("selected_options") or []
        if team is None or not user or not route.isdigit() or not text:
            return
        private = " --private" if options else ""
        message = IncomingMessage(
            platform=PLATFORM,
            community=team.community,
            conversation=user,
            sender=user,
            text=f"/answer {route} {text}{private}",
            received_at=datetime.now(UTC),
            is_direct=True,
        )
        for reply in self._handle(message).replies:
            self.post(team_id=team_id, channel=user, reply=reply)

    def _on_joined(self, event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        """Someone joined a channel the bot is in: the core welcomes them (once ever; a private reply is
        sent as an ephemeral-free direct message to them)."""
        team_id = str(body.get("team_id") or context.team_id or self.team_id)
        team = self.team(team_id)
        user, channel = str(event.get("user") or ""), str(event.get("channel") or "")
        if team is None or not user or not channel or user == team.bot_user_id:
            return
        message = IncomingMessage(
            platform=PLATFORM,
            community=team.community,
            conversation=channel,
            sender=user,
            text="",
            received_at=datetime.now(UTC),
            sender_name=self.display_name(team_id, user),
            intent=JOINED_INTENT,
            platform_key=f"{PLATFORM}:{team_id}:joined:{channel}:{user}:{event.get('event_ts', '')}",
        )
        result = self._handle(message)
        for reply in result.replies:
            target = user if reply.private else channel
            self.post(team_id=team_id, channel=target, reply=reply)

    def _on_uninstalled(self, body: dict[str, Any]) -> None:
        team_id = str(body.get("team_id") or "")
        with self._lock:
            self._uninstalled.add(team_id)
            self._teams.pop(team_id, None)
        if self._store is not None:
            self._store.revoke(team_id)
        log.warning(
            "slack: workspace %s uninstalled the app or revoked its tokens; no more sends to it", team_id
        )

    # --- outbound ---------------------------------------------------------------------------------------

    def post(self, *, team_id: str, channel: str, reply: Reply, thread_ts: str | None = None) -> None:
        """Queue ``reply`` for ``channel`` (in ``thread_ts`` when given) through the paced outbox."""
        self.outbox.submit(
            (team_id, channel),
            _Post(team_id, channel, escape(reply.text), render_blocks(reply), thread_ts, reply.attachment,
                  reply.key),
        )

    def redeliver(self, *, community: str, conversation: str, thread: str, reply: Reply,
                  timeout: float = 60.0) -> bool:
        """Post a dead process's journalled ``reply`` (:class:`bot.delivery.Responder`) unless Slack has a
        message tagged with its key already (``conversations.replies`` of the thread, or the last 100
        messages of ``conversations.history`` for a reply outside threads, with their metadata); returns
        ``True`` when it posted, ``False`` when the reply was there (the process died after Slack took it).

        Raises:
            LookupError: no installed workspace serves ``community``.
            TargetGone / SlackApiError / TimeoutError: Slack refused or did not answer in ``timeout``.
        """
        team_id = self._team_of(community)
        team = self.team(team_id) if team_id is not None else None
        if team_id is None or team is None:
            raise LookupError(f"no Slack workspace serves the community {community!r}")
        if thread:
            found = team.client.conversations_replies(channel=conversation, ts=thread, limit=200,
                                                      include_all_metadata=True)
        else:
            found = team.client.conversations_history(channel=conversation, limit=100,
                                                      include_all_metadata=True)
        for posted in found.get("messages") or []:
            payload = (posted.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == reply.key:
                return False
        post = _Post(team_id, conversation, escape(reply.text), render_blocks(reply), thread or None,
                     reply.attachment, reply.key)
        self.outbox.submit((team_id, conversation), post).result(timeout=timeout)
        return True

    def send(self, *, community: str, conversation: str, reply: Reply, timeout: float = 120.0) -> None:
        """Post a notification (scheduled work, :class:`jobs.context.Sender`): ``reply`` to ``conversation``
        (a channel id, or a user id for a direct message) of the workspace serving ``community``, through
        the paced outbox; returns once Slack accepted it.

        Raises:
            LookupError: no installed workspace serves ``community``.
            TargetGone / SlackApiError / TimeoutError: Slack refused it or did not answer in ``timeout``.
        """
        team_id = self._team_of(community)
        if team_id is None:
            raise LookupError(f"no Slack workspace serves the community {community!r}")
        post = _Post(team_id, conversation, escape(reply.text), render_blocks(reply), None, reply.attachment)
        self.outbox.submit((team_id, conversation), post).result(timeout=timeout)

    def _team_of(self, community: str) -> str | None:
        with self._lock:
            for team_id, team in self._teams.items():
                if team.community == community and team_id not in self._uninstalled:
                    return team_id
        return self._store.team_of(community) if self._store is not None else None

    def _send(self, target: Hashable, post: _Post) -> Any:
        team = self.team(post.team_id)
        if team is None:
            self._record(post, "app_uninstalled")
            raise TargetGone("app_uninstalled")
        try:
            if post.attachment and Path(post.attachment).is_file():
                answer = self._upload(team.client, post)
                self._record(post, None)
                return answer
            kwargs: dict[str, Any] = {"channel": post.channel, "text": post.text}
            if post.blocks:
                kwargs["blocks"] = post.blocks
            if post.thread_ts:
                kwargs["thread_ts"] = post.thread_ts
            if post.key:  # found again by redeliver() if this process dies before recording it sent
                kwargs["metadata"] = {"event_type": REPLY_EVENT, "event_payload": {"key": post.key}}
            answer = team.client.chat_postMessage(**kwargs)
            self._record(post, None)
            return answer
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", None)
            if status == 429:
                raise RateLimited(float(exc.response.headers.get("Retry-After", 1))) from exc
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if error in GONE_ERRORS:
                self._record(post, error)
                raise TargetGone(error) from exc
            raise

    def _record(self, post: _Post, error: str | None) -> None:
        """Record a journalled reply sent (``error`` ``None``) or refused for good."""
        if not post.key or self._delivery is None:
            return
        if error is None:
            self._delivery.mark_sent(post.key)
        else:
            self._delivery.mark_failed(post.key, error)

    @staticmethod
    def _upload(client: WebClient, post: _Post) -> Any:
        """Upload ``post.attachment`` (a picture) to the channel with the text as its comment; a user id is
        first turned into the id of the direct conversation with them (uploads need a channel id)."""
        channel = post.channel
        if channel[:1] in ("U", "W"):
            channel = str(client.conversations_open(users=channel)["channel"]["id"])
        kwargs: dict[str, Any] = {"channel": channel, "file": post.attachment, "initial_comment": post.text,
                                  "title": Path(post.attachment).name}
        if post.thread_ts:
            kwargs["thread_ts"] = post.thread_ts
        return client.files_upload_v2(**kwargs)

    def socket_mode_handler(self, app_token: str) -> SocketModeHandler:
        """A Socket Mode connection for this app (``connect()`` to run it in the background, ``start()`` to
        block): Slack pushes events over a WebSocket opened with the xapp- app-level token, so no public
        HTTP endpoint is needed. ``apps.connections.open`` goes to this adapter's Web API URL."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        return SocketModeHandler(self.app, app_token, web_client=WebClient(base_url=self._api_url))

    def close(self) -> None:
        """Send what is queued, then stop the outbox."""
        self.outbox.close()


def answer_view(route: str) -> dict[str, Any]:
    """The modal of the "Answer" button: a multi-line answer and a "keep it private" box (bilingual
    labels); ``private_metadata`` carries the question route's id."""
    return {
        "type": "modal",
        "callback_id": ANSWER_VIEW,
        "private_metadata": route,
        "title": {"type": "plain_text", "text": "Answer · 回答"},
        "submit": {"type": "plain_text", "text": "Send · 发送"},
        "blocks": [
            {"type": "input", "block_id": "answer",
             "label": {"type": "plain_text", "text": "Your answer · 你的回答"},
             "element": {"type": "plain_text_input", "action_id": "text", "multiline": True}},
            {"type": "input", "block_id": "share", "optional": True,
             "label": {"type": "plain_text", "text": "Sharing · 分享"},
             "element": {"type": "checkboxes", "action_id": "private", "options": [
                 {"text": {"type": "plain_text",
                           "text": "Keep it private (not saved for others) · 不公开（不保存给其他人）"},
                  "value": "private"}]}},
        ],
    }


def _ack_now(ack: Ack) -> None:
    """Acknowledge at once (Slack's 3-second deadline); the work runs in the lazy listener after it."""
    ack()


def render_blocks(reply: Reply) -> list[dict[str, Any]] | None:
    """Block Kit for a reply with buttons: the text as a section, the buttons as an actions block.

    ``None`` for a reply without buttons (plain ``text`` is enough).
    """
    if not reply.buttons:
        return None
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(reply.text)[:3000]}},
        {"type": "actions", "elements": [_button(b, i) for i, b in enumerate(reply.buttons[:25])]},
    ]


def _button(button: Button, index: int) -> dict[str, Any]:
    """One button; ``action_id`` is ``<action>:<index>`` because ids must be unique within a block."""
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": button.label[:75], "emoji": True},
        "action_id": f"{button.action}:{index}",
        "value": button.value[:2000],
    }


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_http(adapter: SlackAdapter, *, host: str = "0.0.0.0", port: int = 3000) -> WSGIServer:  # noqa: S104
    """A threaded WSGI server answering Slack's signed requests at ``/slack/events`` (and ``/healthz``,
    and ``/metrics`` for Prometheus).

    Call ``serve_forever()`` on it (``communitybot run`` does) or run it in a thread (tests). Behind a
    proxy in production, or put ``SlackRequestHandler(adapter.app)`` into any WSGI server.
    """
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    bolt = SlackRequestHandler(adapter.app)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            from bot import observability

            return observability.healthz(environ, start_response)
        if environ.get("PATH_INFO") == "/metrics":
            from bot import observability

            start_response("200 OK", [("Content-Type", observability.CONTENT_TYPE)])
            return [observability.metrics_text()]
        return bolt(environ, start_response)

    return make_server(
        host, port, application, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("slack http: " + format, *args)


def _ts_time(ts: str) -> datetime:
    """A Slack ``ts`` ("1700000000.000100") as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def from_settings(settings: Settings, handle: Handle, *, engine: Engine,
                  delivery: Delivery | None = None) -> SlackAdapter:
    """The adapter a deployment's ``COMMUNITYBOT_SLACK_*`` settings describe: one workspace with a bot token,
    or several through OAuth (client id and secret; installations in the database).

    Raises:
        ValueError: a required setting is missing (the message names it).
    """
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if token:
        return SlackAdapter(
            handle=handle,
            signing_secret=secret,
            bot_token=token,
            community=settings.slack_community or settings.default_community,
            api_url=settings.slack_api_url,
            delivery=delivery,
        )
    client_secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else ""
    if not settings.slack_client_id or not client_secret:
        raise ValueError(
            "Slack needs COMMUNITYBOT_SLACK_BOT_TOKEN (one workspace) or "
            "COMMUNITYBOT_SLACK_CLIENT_ID and COMMUNITYBOT_SLACK_CLIENT_SECRET (several "
            "workspaces through OAuth)"
        )
    from adapters.slack_store import DatabaseOAuthStateStore

    return SlackAdapter(
        handle=handle,
        signing_secret=secret,
        installation_store=DatabaseInstallationStore(engine=engine, settings=settings),
        client_id=settings.slack_client_id,
        client_secret=client_secret,
        state_store=DatabaseOAuthStateStore(engine=engine),
        api_url=settings.slack_api_url,
        delivery=delivery,
    )
