"""A loopback fake of the Slack Web API, and builders for what Slack sends to an app.

:class:`FakeSlack` runs a real HTTP server on ``127.0.0.1`` (an OS-chosen port, a daemon thread) that the
real :class:`slack_sdk.WebClient` talks to when built with ``base_url=fake.base_url``; slack-bolt's ``App``
uses it through ``App(client=WebClient(base_url=...))``. It holds several workspaces (a token names its
workspace), answers the Web API methods the adapter uses in Slack's own shapes (HTTP 200 with
``{"ok": false, "error": ...}`` for API errors, HTTP 429 with ``Retry-After`` for rate limits), records every
request in :attr:`FakeSlack.calls`, and injects failures (rate limits, dead channels, slowness). It also
serves ``response_url`` endpoints (:meth:`FakeSlack.new_response_url`) and the upload URLs of the
``files.getUploadURLExternal`` flow.

The module-level helpers build the inbound side: :func:`sign` gives the ``X-Slack-Signature`` headers exactly
as Slack computes them, :func:`event_callback`, :func:`message_event`, :func:`app_mention_event` build
Events API payloads and :func:`slash_command_form` builds a slash command's form body.

Notes on how ``slack_sdk.WebClient`` (3.48) talks to it: every method is sent as ``POST`` whatever its
documented verb, with the token in ``Authorization: Bearer``; most methods send
``application/x-www-form-urlencoded`` (booleans as ``"1"``/``"0"``, ``None`` values dropped) but
``chat.postMessage``, ``chat.postEphemeral``, ``chat.update`` and about 70 more send a JSON body;
``oauth.v2.access`` sends a form with HTTP Basic client credentials and no token. Its default retry handlers
retry connection errors only, so a 429 surfaces as :class:`slack_sdk.errors.SlackApiError` unless the caller
installs ``RateLimitErrorRetryHandler``. It reads ``HTTPS_PROXY``/``HTTP_PROXY`` itself and ignores
``NO_PROXY``: with a proxy variable set, even loopback calls go to the proxy.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

JSON = dict[str, Any]
Params = dict[str, Any]

APP_ID = "A0FAKEAPP1"
"""The app id the fake reports (``auth.test`` has none, ``oauth.v2.access``) and the builders put in
``api_app_id``."""
VERIFICATION_TOKEN = "fake-verification-token"
"""The deprecated verification token Slack still puts in event and command payloads."""
DEFAULT_SCOPE = "app_mentions:read,channels:history,chat:write,commands,im:history,im:write,users:read"
RESPONSE_URL_METHOD = "response_url"
"""The :attr:`Call.method` of a POST to a ``response_url``; also the key for :meth:`FakeSlack.rate_limit`
and :meth:`FakeSlack.slow` on those."""
RESPONSE_URL_MAX_USES = 5
"""Slack accepts at most five posts to one ``response_url``; later ones answer 404 ``used_url``."""

_NO_AUTH_METHODS = frozenset({"oauth.v2.access", "api.test", "apps.connections.open"})
_CHANNEL_WRITE_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update"})
_RATELIMITED: JSON = {"ok": False, "error": "ratelimited"}


class SlackApiFailure(Exception):
    """Raised inside a method handler: the fake answers ``{"ok": false, "error": error}`` with ``status``."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


@dataclass
class Call:
    """One request the fake received, recorded when it arrived.

    Attributes:
        method: Web API method (``"chat.postMessage"``), or :data:`RESPONSE_URL_METHOD` for a response_url.
        token: the bearer (or ``token`` parameter) sent, ``None`` when none.
        team_id: the workspace the token belongs to, ``None`` when unknown (or for a response_url not tied
            to a team).
        params: the request's parameters, merged from the query string and the body: form values are
            ``str`` (as sent), JSON values keep their JSON types, uploaded files are ``bytes``.
        at: ``time.monotonic()`` seconds at arrival (before any injected delay).
        status: the HTTP status answered (200, 429, 404); 0 while the answer is not decided yet.
        ok: the ``ok`` of the answer (``False`` until decided).
        error: the ``error`` of the answer, ``None`` when ok.
    """

    method: str
    token: str | None
    team_id: str | None
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    status: int = 0
    ok: bool = False
    error: str | None = None

    @property
    def done(self) -> bool:
        """Whether the fake has decided its answer."""
        return self.status != 0


@dataclass
class Upload:
    """A file uploaded through ``files.upload`` or the ``files.getUploadURLExternal`` flow.

    Attributes:
        file_id: ``F...`` id the fake assigned.
        team_id: workspace of the uploading token.
        filename: the ``filename`` given.
        data: the bytes received (``None`` until posted to the upload URL).
        title: the title from ``files.completeUploadExternal``/``files.upload``, ``None`` when none.
        channels: channel ids it was shared to (empty: private).
        initial_comment: the message text sent with it, ``None`` when none.
        thread_ts: thread it was shared into, ``None`` when none.
        completed: ``files.completeUploadExternal`` (or ``files.upload``) finished it.
    """

    file_id: str
    team_id: str
    filename: str
    data: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False


@dataclass
class _Workspace:
    team_id: str
    team_name: str
    domain: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    bot_name: str
    users: dict[str, JSON]
    channels: dict[str, JSON]
    dms: dict[str, str] = field(default_factory=dict)
    messages: dict[tuple[str, str], JSON] = field(default_factory=dict)


@dataclass
class _OAuthCode:
    team_id: str
    access_token: str
    scope: str
    installer_user_id: str
    client_id: str | None
    client_secret: str | None
    redirect_uri: str | None


@dataclass
class _ResponseUrl:
    team_id: str | None
    uses: int = 0


def _user_record(team_id: str, user: Mapping[str, Any]) -> JSON:
    """A ``users.list`` member from a short spec (``id`` and ``name`` needed; any other key overrides)."""
    if "id" not in user or "name" not in user:
        raise ValueError(f"a user needs at least 'id' and 'name': {dict(user)!r}")
    real_name = str(user.get("real_name", user["name"]))
    display_name = str(user.get("display_name", ""))  # Slack's default: many people never set one
    profile: JSON = {
        "real_name": real_name,
        "real_name_normalized": real_name,
        "display_name": display_name,
        "display_name_normalized": display_name,
        "team": team_id,
        "image_72": f"https://avatars.example/{user['id']}_72.png",
    }
    if "email" in user:
        profile["email"] = user["email"]
    profile.update(user.get("profile", {}))
    record: JSON = {
        "id": user["id"],
        "team_id": team_id,
        "name": user["name"],
        "deleted": False,
        "real_name": real_name,
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "is_admin": False,
        "is_owner": False,
        "is_bot": False,
        "is_app_user": False,
        "updated": 1700000000,
    }
    record.update({k: v for k, v in user.items() if k not in ("display_name", "email", "profile")})
    record["profile"] = profile
    return record


def _channel_record(channel: Mapping[str, Any], bot_user_id: str) -> JSON:
    """A ``conversations.info`` channel from a short spec (``id`` needed; any other key overrides)."""
    if "id" not in channel:
        raise ValueError(f"a channel needs at least 'id': {dict(channel)!r}")
    name = str(channel.get("name", str(channel["id"]).lower()))
    private = bool(channel.get("is_private", False))
    record: JSON = {
        "id": channel["id"],
        "name": name,
        "name_normalized": name,
        "is_channel": not private,
        "is_group": private,
        "is_im": False,
        "is_mpim": False,
        "is_private": private,
        "is_archived": False,
        "is_general": name == "general",
        "is_member": True,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "created": 1600000000,
        "creator": bot_user_id,
        "topic": {"value": "", "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
    }
    record.update(channel)
    return record


def _bool_param(value: Any) -> bool:
    """A boolean parameter as slack_sdk sends it: ``"1"``/``"0"``/``"true"`` in forms, JSON booleans."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _encode_cursor(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode("ascii")


def _decode_cursor(kind: str, cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor.encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise SlackApiFailure("invalid_cursor") from exc
    prefix, _, key = decoded.partition(":")
    if prefix != kind or not key:
        raise SlackApiFailure("invalid_cursor")
    return key


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields of a ``multipart/form-data`` body: ``str`` for plain fields, ``bytes`` for files."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        fields[str(name)] = payload if part.get_filename() else payload.decode("utf-8")
    return fields


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Parameters from a request body by its content type (JSON, urlencoded form, multipart form).

    Raises:
        SlackApiFailure: ``invalid_json`` for a JSON body that does not parse to an object.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if kind == "application/json":
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SlackApiFailure("invalid_json") from exc
        if not isinstance(parsed, dict):
            raise SlackApiFailure("invalid_json")
        return parsed
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body)
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the fake records calls instead of logging them."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, headers, payload = self.server.fake._dispatch(self.path, dict(self.headers.items()), body)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


Handler = Callable[[_Workspace | None, dict[str, Any], Call], JSON]


class FakeSlack:
    """A loopback fake Slack Web API: a real HTTP server for the real ``slack_sdk.WebClient``.

    Use as a context manager (``with FakeSlack() as fake:``) or call :meth:`start`/:meth:`stop`. Point a
    client at it with ``WebClient(token=..., base_url=fake.base_url)``. All methods are thread-safe; the
    server answers each request on its own thread.

    Args:
        users_page_size: the most members one ``users.list`` page holds (a smaller ``limit`` wins).
        strict_channels: answer ``channel_not_found`` to a post into a channel no workspace declared;
            by default any channel id is accepted (DMs and channels created on the fly just work).
        app_id: the app's id, reported by ``oauth.v2.access`` and the message ``app_id``.

    Answers follow Slack: HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``; HTTP 429
    with ``Retry-After`` (seconds) when rate limited; ``unknown_method`` for methods it does not know.
    """

    def __init__(self, *, users_page_size: int = 200, strict_channels: bool = False,
                 app_id: str = APP_ID) -> None:
        self.users_page_size = users_page_size
        self.strict_channels = strict_channels
        self.app_id = app_id
        self.calls: list[Call] = []
        """Every request, in arrival order (rate-limited and failed ones included)."""
        self.uploads: list[Upload] = []
        """Every file upload started, in order."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._workspaces: dict[str, _Workspace] = {}
        self._tokens: dict[str, str] = {}
        self._revoked: dict[str, str] = {}
        self._socket_urls: dict[str, str] = {}
        self._codes: dict[str, _OAuthCode] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._rate_limits: dict[str, list[int]] = {}
        self._failed_channels: dict[str, str] = {}
        self._slow: dict[str, tuple[float, int | None]] = {}
        self._last_ts = 0.0
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Handler] = {
            "api.test": self._api_test,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "users.list": self._users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "oauth.v2.access": self._oauth_v2_access,
            "files.upload": self._files_upload,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        """Bind ``127.0.0.1:<free port>`` and serve on a daemon thread; returns ``self``.

        Raises:
            RuntimeError: when already started.
        """
        if self._server is not None:
            raise RuntimeError("FakeSlack is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; a no-op when not running. Wakes every ``wait_for_*``."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port it listens on.

        Raises:
            RuntimeError: when not started.
        """
        if self._server is None:
            raise RuntimeError("FakeSlack is not running: call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``: what ``WebClient(base_url=...)`` expects."""
        return f"{self.root_url}/api/"

    # ------------------------------------------------------------------ setup

    def add_workspace(self, team_id: str, bot_token: str, bot_user_id: str, bot_id: str,
                      users: Iterable[Mapping[str, Any]] = (), channels: Iterable[Mapping[str, Any]] = (), *,
                      team_name: str | None = None, domain: str | None = None, bot_name: str = "communitybot",
                      list_bots: bool = True) -> None:
        """Install the app in a workspace whose bot token is ``bot_token``.

        Args:
            team_id: ``T...`` id.
            bot_token: ``xoxb-...`` token that names this workspace in later calls.
            bot_user_id: the bot's user id (``auth.test`` ``user_id``); bot_id: its ``B...`` id.
            users: member specs, each at least ``{"id", "name"}``; optional ``real_name`` (default: name),
                ``display_name`` (default ``""``, as for most real people), ``email``, ``is_bot``,
                ``deleted``, ``profile`` (merged) and any other key (copied).
            channels: channel specs, each at least ``{"id"}``; optional ``name``, ``is_private``,
                ``is_archived`` (posts answer ``is_archived``), ``is_member`` (``False``: posts answer
                ``not_in_channel``) and any other key.
            team_name: ``auth.test`` ``team`` (default: the id); domain: ``https://DOMAIN.slack.com/``.
            bot_name: the bot user's ``name``.
            list_bots: list the bot user and ``USLACKBOT`` in ``users.list``, as Slack does.

        Raises:
            ValueError: a token already in use by another workspace, or a malformed user/channel spec.
        """
        with self._lock:
            owner = self._tokens.get(bot_token)
            if owner is not None and owner != team_id:
                raise ValueError(f"token {bot_token!r} already belongs to {owner}")
            members = [_user_record(team_id, u) for u in users]
            if list_bots:
                members.append(_user_record(team_id, {
                    "id": bot_user_id, "name": bot_name, "is_bot": True,
                    "profile": {"bot_id": bot_id, "api_app_id": self.app_id, "always_active": True}}))
                slackbot = {"id": "USLACKBOT", "name": "slackbot", "real_name": "Slackbot"}
                members.append(_user_record(team_id, slackbot))
            ws = _Workspace(
                team_id=team_id, team_name=team_name or team_id,
                domain=domain or team_id.lower().replace("_", "-"),
                bot_token=bot_token, bot_user_id=bot_user_id, bot_id=bot_id, bot_name=bot_name,
                users={m["id"]: m for m in members},
                channels={c["id"]: _channel_record(c, bot_user_id) for c in channels})
            self._workspaces[team_id] = ws
            self._tokens[bot_token] = team_id
            self._revoked.pop(bot_token, None)

    def add_oauth_code(self, code: str, team_id: str, *, access_token: str | None = None,
                       scope: str = DEFAULT_SCOPE, installer_user_id: str = "U_INSTALLER",
                       client_id: str | None = None, client_secret: str | None = None,
                       redirect_uri: str | None = None) -> None:
        """Register a one-time OAuth ``code`` that ``oauth.v2.access`` exchanges for a bot token of
        ``team_id``.

        Args:
            code: the code Slack would put on the redirect.
            team_id: a workspace added with :meth:`add_workspace`.
            access_token: the token issued (default: the workspace's bot token); a new one becomes valid for
                the workspace once exchanged.
            scope: comma-separated scopes reported.
            installer_user_id: ``authed_user.id`` reported.
            client_id, client_secret, redirect_uri: when given, the exchange must present the same values
                (``invalid_client_id``, ``bad_client_secret``, ``bad_redirect_uri`` otherwise); client
                credentials may come as HTTP Basic auth (slack_sdk's way) or form fields.

        Raises:
            KeyError: ``team_id`` is not a workspace.
        """
        with self._lock:
            ws = self._workspaces[team_id]
            self._codes[code] = _OAuthCode(team_id, access_token or ws.bot_token, scope, installer_user_id,
                                           client_id, client_secret, redirect_uri)

    def socket_mode(self, app_token: str, url: str) -> None:
        """Answer ``apps.connections.open`` called with the app-level token ``app_token`` with ``url`` (the
        WebSocket a :class:`tests.slack.fake_socket_mode.FakeSocketMode` serves)."""
        with self._lock:
            self._socket_urls[app_token] = url

    def revoke(self, token: str, error: str = "invalid_auth") -> None:
        """Make ``token`` fail every later call with ``error`` (Slack itself says ``token_revoked`` for a
        revoked token and ``invalid_auth`` for an unknown one; ``account_inactive`` after an uninstall)."""
        with self._lock:
            self._revoked[token] = error

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429, ``Retry-After: retry_after`` (seconds)
        and ``{"ok": false, "error": "ratelimited"}``. Calls already limited add up."""
        with self._lock:
            left = self._rate_limits.get(method, [0, retry_after])
            self._rate_limits[method] = [left[0] + times, retry_after]

    def fail_channel(self, channel: str, error: str | None) -> None:
        """Answer posts (``chat.postMessage``, ``chat.postEphemeral``, ``chat.update``) to ``channel`` with
        ``{"ok": false, "error": error}`` (``not_in_channel``, ``is_archived``, ``channel_not_found``...)
        until called again with ``error=None``."""
        with self._lock:
            if error is None:
                self._failed_channels.pop(channel, None)
            else:
                self._failed_channels[channel] = error

    def slow(self, method: str, seconds: float, times: int | None = None) -> None:
        """Delay the answer to ``method`` by ``seconds`` (for its next ``times`` calls, or all when ``None``);
        ``seconds=0`` removes the delay. The call is still recorded when it arrives."""
        with self._lock:
            if seconds <= 0:
                self._slow.pop(method, None)
            else:
                self._slow[method] = (seconds, times)

    def new_response_url(self, team_id: str | None = None) -> str:
        """A fresh ``response_url`` (``http://127.0.0.1:PORT/response/<id>``) the fake accepts up to
        :data:`RESPONSE_URL_MAX_USES` posts to; see :meth:`responses`."""
        url_id = uuid.uuid4().hex
        with self._lock:
            self._response_urls[url_id] = _ResponseUrl(team_id)
        return f"{self.root_url}/response/{url_id}"

    def clear(self) -> None:
        """Forget recorded calls and uploads; workspaces and injected failures stay."""
        with self._lock:
            self.calls.clear()
            self.uploads.clear()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str, *, channel: str | None = None, ok: bool | None = True,
                 team_id: str | None = None) -> list[JSON]:
        """Params of the answered calls to ``method`` in arrival order, filtered by ``channel`` (the
        ``channel`` param as sent), ``team_id`` and ``ok`` (``None``: successful and failed alike)."""
        with self._lock:
            return [dict(c.params) for c in self._matching(method, channel, ok, team_id)]

    def posts(self, channel: str | None = None) -> list[JSON]:
        """The params of successful ``chat.postMessage`` calls, in order (``channel``, ``text``,
        ``thread_ts``, ``blocks``... as sent; slack_sdk sends this method as JSON). Rate-limited or failed
        attempts are only in :attr:`calls`."""
        return self.calls_to("chat.postMessage", channel=channel)

    def wait_for_calls(self, method: str, n: int, timeout: float = 5.0, *, channel: str | None = None,
                       ok: bool | None = True) -> list[JSON]:
        """Block until at least ``n`` calls match (as :meth:`calls_to`); returns all that match.

        Raises:
            TimeoutError: fewer than ``n`` matched within ``timeout`` seconds (the message lists what came).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._matching(method, channel, ok, None)
                if len(found) >= n:
                    return [dict(c.params) for c in found]
                left = deadline - time.monotonic()
                if left <= 0 or self._server is None:
                    seen = ", ".join(f"{c.method}:{c.status}:{c.error or 'ok'}" for c in self.calls)
                    seen = seen or "nothing"
                    raise TimeoutError(f"{len(found)} of {n} {method} calls in {timeout:.1f}s; saw {seen}")
                self._changed.wait(left)

    def wait_for_posts(self, n: int, timeout: float = 5.0, channel: str | None = None) -> list[JSON]:
        """Block until at least ``n`` successful ``chat.postMessage`` calls arrived; returns them all.

        Raises:
            TimeoutError: fewer than ``n`` within ``timeout`` seconds.
        """
        return self.wait_for_calls("chat.postMessage", n, timeout, channel=channel)

    def responses(self) -> list[JSON]:
        """The JSON payloads accepted at response URLs (``text``, ``response_type``, ``replace_original``...),
        in order."""
        return self.calls_to(RESPONSE_URL_METHOD)

    def wait_for_responses(self, n: int, timeout: float = 5.0) -> list[JSON]:
        """Block until at least ``n`` response_url posts were accepted; returns them all.

        Raises:
            TimeoutError: fewer than ``n`` within ``timeout`` seconds.
        """
        return self.wait_for_calls(RESPONSE_URL_METHOD, n, timeout)

    def _matching(self, method: str, channel: str | None, ok: bool | None, team_id: str | None) -> list[Call]:
        return [c for c in self.calls
                if c.method == method and c.done and (ok is None or c.ok == ok)
                and (channel is None or c.params.get("channel") == channel)
                and (team_id is None or c.team_id == team_id)]

    # ------------------------------------------------------------------ HTTP dispatch

    def _dispatch(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request: (status, headers, body bytes)."""
        parts = urlsplit(path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        lower = {k.lower(): v for k, v in headers.items()}
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 2 and segments[0] == "api":
            return self._api(segments[1], lower, query, body)
        if len(segments) == 2 and segments[0] == "response":
            return self._response_url(segments[1], lower, body)
        if len(segments) == 2 and segments[0] == "upload":
            return self._upload_bytes(segments[1], body)
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def _api(self, method: str, headers: dict[str, str], query: dict[str, str],
             body: bytes) -> tuple[int, dict[str, str], bytes]:
        params: dict[str, Any] = dict(query)
        parse_error: str | None = None
        try:
            params.update(_parse_body(headers.get("content-type", ""), body))
        except SlackApiFailure as exc:
            parse_error = exc.error
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = token or (str(params.pop("token")) if params.get("token") else None)
        params.pop("token", None)
        if auth.lower().startswith("basic "):
            params.setdefault("_basic_auth", auth[6:].strip())
        with self._lock:
            team_id = self._tokens.get(token) if token else None
            call = Call(method, token, team_id, {k: v for k, v in params.items() if k != "_basic_auth"})
            self.calls.append(call)
            limited = self._take_rate_limit(method)
            delay = self._take_delay(method)
        if limited is not None:
            return self._finish(call, 429, _RATELIMITED, {"Retry-After": str(limited)})
        if delay:
            time.sleep(delay)
        with self._lock:
            try:
                if parse_error is not None:
                    raise SlackApiFailure(parse_error)
                handler = self._methods.get(method)
                if handler is None:
                    raise SlackApiFailure("unknown_method", req_method=method)
                ws = None if method in _NO_AUTH_METHODS else self._authenticate(token)
                answer = handler(ws, params, call)
                status = 200
            except SlackApiFailure as exc:
                answer, status = {"ok": False, "error": exc.error, **exc.extra}, exc.status
        return self._finish(call, status, answer, {})

    def _finish(self, call: Call, status: int, answer: JSON,
                headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._changed:
            call.status, call.ok, call.error = status, bool(answer.get("ok")), answer.get("error")
            self._changed.notify_all()
        all_headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        return status, all_headers, json.dumps(answer).encode()

    def _take_rate_limit(self, method: str) -> int | None:
        limit = self._rate_limits.get(method)
        if not limit or limit[0] <= 0:
            return None
        limit[0] -= 1
        if limit[0] == 0:
            del self._rate_limits[method]
        return limit[1]

    def _take_delay(self, method: str) -> float:
        slow = self._slow.get(method)
        if slow is None:
            return 0.0
        seconds, times = slow
        if times is not None:
            if times <= 1:
                del self._slow[method]
            else:
                self._slow[method] = (seconds, times - 1)
        return seconds

    def _authenticate(self, token: str | None) -> _Workspace:
        if not token:
            raise SlackApiFailure("not_authed")
        if token in self._revoked:
            raise SlackApiFailure(self._revoked[token])
        team_id = self._tokens.get(token)
        if team_id is None:
            raise SlackApiFailure("invalid_auth")
        return self._workspaces[team_id]

    def _apps_connections_open(self, ws: Any, params: Params, call: Call) -> JSON:
        url = self._socket_urls.get(call.token or "")
        if url is None:
            raise SlackApiFailure("invalid_auth")
        return {"ok": True, "url": url}

    def _response_url(self, url_id: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            payload = _parse_body(headers.get("content-type", "application/json"), body)
        except SlackApiFailure:
            payload = {"_raw": body.decode("utf-8", "replace")}
        if isinstance(payload.get("payload"), str):  # the legacy form-encoded ``payload=<json>`` shape
            with contextlib.suppress(json.JSONDecodeError):
                payload = json.loads(payload["payload"])
        with self._lock:
            entry = self._response_urls.get(url_id)
            call = Call(RESPONSE_URL_METHOD, None, entry.team_id if entry else None, payload)
            self.calls.append(call)
            limited = self._take_rate_limit(RESPONSE_URL_METHOD)
            delay = self._take_delay(RESPONSE_URL_METHOD)
            if entry is not None and limited is None:
                entry.uses += 1
        if limited is not None:
            return self._finish(call, 429, _RATELIMITED, {"Retry-After": str(limited)})
        if delay:
            time.sleep(delay)
        if entry is None:
            return self._finish(call, 404, {"ok": False, "error": "no_such_response_url"}, {})
        if entry.uses > RESPONSE_URL_MAX_USES:
            return self._finish(call, 404, {"ok": False, "error": "used_url"}, {})
        if not any(payload.get(k) for k in ("text", "blocks", "attachments", "delete_original")):
            return self._finish(call, 400, {"ok": False, "error": "no_text"}, {})
        return self._finish(call, 200, {"ok": True}, {})

    def _upload_bytes(self, file_id: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            upload = next((u for u in self.uploads if u.file_id == file_id), None)
            if upload is None:
                return 404, {"Content-Type": "text/plain"}, b"file not found"
            upload.data = body
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(body)}".encode()

    # ------------------------------------------------------------------ helpers for methods (lock held)

    def _next_ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0FAKE{next(self._ids):06d}"

    def _resolve_channel(self, ws: _Workspace, channel: Any, method: str) -> str:
        """The channel id a post goes to: ids as given, ``#name``/``name`` looked up, a user id to its DM.

        Raises:
            SlackApiFailure: ``channel_not_found``, an injected failure, ``is_archived``, ``not_in_channel``.
        """
        if not channel:
            raise SlackApiFailure("channel_not_found")
        channel = str(channel)
        if channel in self._failed_channels and method in _CHANNEL_WRITE_METHODS:
            raise SlackApiFailure(self._failed_channels[channel])
        by_name = {c["name"]: cid for cid, c in ws.channels.items()}
        cid = by_name.get(channel.lstrip("#"), channel) if channel not in ws.channels else channel
        if cid in ws.users:
            cid = self._dm(ws, cid)
        if cid in self._failed_channels and method in _CHANNEL_WRITE_METHODS:
            raise SlackApiFailure(self._failed_channels[cid])
        info = ws.channels.get(cid)
        if info is None:
            if self.strict_channels and cid not in ws.dms.values():
                raise SlackApiFailure("channel_not_found")
            return cid
        if method in _CHANNEL_WRITE_METHODS:
            if info.get("is_archived"):
                raise SlackApiFailure("is_archived")
            if not info.get("is_member", True):
                raise SlackApiFailure("not_in_channel")
        return cid

    def _dm(self, ws: _Workspace, user_id: str) -> str:
        if user_id not in ws.dms:
            ws.dms[user_id] = "D" + user_id[1:] if len(user_id) > 1 else self._new_id("D")
        return ws.dms[user_id]

    def _message(self, ws: _Workspace, params: dict[str, Any], ts: str) -> JSON:
        message: JSON = {
            "type": "message", "text": params.get("text", ""), "user": ws.bot_user_id, "bot_id": ws.bot_id,
            "app_id": self.app_id, "team": ws.team_id, "ts": ts,
            "bot_profile": {"id": ws.bot_id, "app_id": self.app_id, "name": ws.bot_name,
                            "team_id": ws.team_id, "deleted": False},
        }
        for key in ("blocks", "attachments", "metadata"):
            value = params.get(key)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise SlackApiFailure(f"invalid_{key}") from None
            if value:
                message[key] = value
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
            message["parent_user_id"] = ws.bot_user_id
        return message

    @staticmethod
    def _require_content(params: dict[str, Any]) -> None:
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            raise SlackApiFailure("no_text")

    @staticmethod
    def _need(ws: _Workspace | None) -> _Workspace:
        if ws is None:  # only methods in _NO_AUTH_METHODS get None
            raise SlackApiFailure("not_authed")
        return ws

    # ------------------------------------------------------------------ methods

    def _api_test(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        return {"ok": True, "args": {k: v for k, v in params.items() if not isinstance(v, bytes)}}

    def _auth_test(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        return {"ok": True, "url": f"https://{w.domain}.slack.com/", "team": w.team_name, "user": w.bot_name,
                "team_id": w.team_id, "user_id": w.bot_user_id, "bot_id": w.bot_id,
                "is_enterprise_install": False}

    def _chat_post_message(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        channel = self._resolve_channel(w, params.get("channel"), "chat.postMessage")
        self._require_content(params)
        ts = self._next_ts()
        message = self._message(w, params, ts)
        w.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _conversation_messages(self, w: _Workspace, params: Params, method: str,
                               keep: Callable[[JSON], bool]) -> JSON:
        """The channel's bot messages that ``keep`` accepts, newest first, at most ``limit``; ``metadata``
        only with ``include_all_metadata`` (as Slack does). Members' own messages never reach the fake, so
        a thread holds the bot's replies only."""
        channel = self._resolve_channel(w, params.get("channel"), method)
        with_metadata = _bool_param(params.get("include_all_metadata"))
        found = [m for (c, _ts), m in w.messages.items() if c == channel and keep(m)]
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        found = found[: int(params.get("limit") or 100)]
        out = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in found]
        return {"ok": True, "messages": out, "has_more": False}

    def _conversations_replies(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        ts = str(params.get("ts") or "")
        if not ts:
            raise SlackApiFailure("invalid_arguments")
        return self._conversation_messages(w, params, "conversations.replies",
                                           lambda m: m.get("thread_ts") == ts or m["ts"] == ts)

    def _conversations_history(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        return self._conversation_messages(w, params, "conversations.history",
                                           lambda m: not m.get("thread_ts"))

    def _chat_post_ephemeral(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        self._resolve_channel(w, params.get("channel"), "chat.postEphemeral")
        user = params.get("user")
        if not user:
            raise SlackApiFailure("user_not_found")
        if user not in w.users:
            raise SlackApiFailure("user_not_in_channel")
        self._require_content(params)
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        channel = self._resolve_channel(w, params.get("channel"), "chat.update")
        ts = str(params.get("ts") or "")
        old = w.messages.get((channel, ts))
        if old is None:
            raise SlackApiFailure("message_not_found")
        self._require_content(params)
        message = self._message(w, {**old, **params}, ts)
        message["edited"] = {"user": w.bot_user_id, "ts": self._next_ts()}
        w.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}

    def _chat_get_permalink(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        channel, ts = params.get("channel"), params.get("message_ts")
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if not ts:
            raise SlackApiFailure("message_not_found")
        link = f"https://{w.domain}.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"
        stored = w.messages.get((str(channel), str(ts)))
        if stored and stored.get("thread_ts"):
            link += f"?thread_ts={stored['thread_ts']}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _users_list(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        members = list(w.users.values())
        try:
            limit = int(params.get("limit") or 0)
        except (TypeError, ValueError):
            raise SlackApiFailure("invalid_limit") from None
        size = min(limit, self.users_page_size) if limit > 0 else self.users_page_size
        start = 0
        if params.get("cursor"):
            key = _decode_cursor("user", str(params["cursor"]))
            ids = [m["id"] for m in members]
            if key not in ids:
                raise SlackApiFailure("invalid_cursor")
            start = ids.index(key)
        page = members[start:start + size]
        rest = members[start + size:]
        next_cursor = _encode_cursor("user", rest[0]["id"]) if rest else ""
        return {"ok": True, "members": page, "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": next_cursor}}

    def _views_open(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        """``views.open``: a modal for a ``trigger_id`` (recorded in :attr:`calls`; the view is echoed)."""
        self._need(ws)
        if not params.get("trigger_id"):
            raise SlackApiFailure("invalid_trigger_id")
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackApiFailure("invalid_arguments")
        return {"ok": True, "view": {**view, "id": f"V{self._next_ts().replace('.', '')}"}}

    def _users_info(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        user = w.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"ok": True, "user": user}

    def _conversations_info(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        cid = str(params.get("channel") or "")
        if cid in w.channels:
            return {"ok": True, "channel": w.channels[cid]}
        user = next((u for u, d in w.dms.items() if d == cid), None)
        if user is None:
            raise SlackApiFailure("channel_not_found")
        return {"ok": True, "channel": {"id": cid, "created": 1600000000, "is_im": True, "user": user,
                                        "is_org_shared": False, "is_user_deleted": False, "priority": 0}}

    def _conversations_open(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        if params.get("channel"):
            cid = str(params["channel"])
            if cid not in w.dms.values() and cid not in w.channels:
                raise SlackApiFailure("channel_not_found")
            return {"ok": True, "channel": {"id": cid}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackApiFailure("users_list_not_supplied")
        for user in users:
            if user not in w.users:
                raise SlackApiFailure("user_not_found")
        if len(users) == 1:
            already = users[0] in w.dms
            cid = self._dm(w, users[0])
        else:
            key = ",".join(sorted(users))
            already = key in w.dms
            w.dms.setdefault(key, self._new_id("G"))
            cid = w.dms[key]
        answer: JSON = {"ok": True, "channel": {"id": cid}}
        if _bool_param(params.get("return_im", False)):
            answer["channel"].update({"created": 1600000000, "is_im": len(users) == 1, "user": users[0]})
        if already:
            answer.update({"no_op": True, "already_open": True})
        return answer

    def _oauth_v2_access(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        basic = params.get("_basic_auth")
        if basic:
            try:
                client_id, _, client_secret = base64.b64decode(basic).decode().partition(":")
            except (binascii.Error, UnicodeError):
                raise SlackApiFailure("invalid_client_id") from None
        code = str(params.get("code") or "")
        grant = self._codes.get(code)
        if grant is None:
            raise SlackApiFailure("invalid_code")
        if grant.client_id is not None and client_id != grant.client_id:
            raise SlackApiFailure("invalid_client_id")
        if grant.client_secret is not None and client_secret != grant.client_secret:
            raise SlackApiFailure("bad_client_secret")
        if grant.redirect_uri is not None and params.get("redirect_uri") != grant.redirect_uri:
            raise SlackApiFailure("bad_redirect_uri")
        del self._codes[code]  # a code works once
        w = self._workspaces[grant.team_id]
        self._tokens[grant.access_token] = w.team_id
        self._revoked.pop(grant.access_token, None)
        call.team_id = w.team_id
        return {"ok": True, "app_id": self.app_id, "authed_user": {"id": grant.installer_user_id},
                "scope": grant.scope, "token_type": "bot", "access_token": grant.access_token,
                "bot_user_id": w.bot_user_id, "team": {"id": w.team_id, "name": w.team_name},
                "enterprise": None, "is_enterprise_install": False}

    def _file_record(self, w: _Workspace, upload: Upload) -> JSON:
        return {"id": upload.file_id, "name": upload.filename, "title": upload.title or upload.filename,
                "size": len(upload.data or b""), "user": w.bot_user_id, "channels": list(upload.channels),
                "permalink": f"https://{w.domain}.slack.com/files/{w.bot_user_id}/{upload.file_id}/{upload.filename}",
                "url_private": f"https://files.slack.com/files-pri/{w.team_id}-{upload.file_id}/{upload.filename}"}

    def _files_upload(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        data = params.get("file")
        if data is None and params.get("content") is not None:
            data = str(params["content"]).encode("utf-8")
        if data is None:
            raise SlackApiFailure("no_file_data")
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        upload = Upload(self._new_id("F"), w.team_id, str(params.get("filename") or "file"),
                        data if isinstance(data, bytes) else str(data).encode(), params.get("title"),
                        channels, params.get("initial_comment"), params.get("thread_ts"), completed=True)
        self.uploads.append(upload)
        call.params.pop("file", None)
        call.params["file_bytes"] = len(upload.data or b"")
        return {"ok": True, "file": self._file_record(w, upload)}

    def _files_get_upload_url_external(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        if not params.get("filename"):
            raise SlackApiFailure("invalid_arguments")
        try:
            length = int(params.get("length") or 0)
        except (TypeError, ValueError):
            raise SlackApiFailure("invalid_length") from None
        if length <= 0:
            raise SlackApiFailure("invalid_length")
        upload = Upload(self._new_id("F"), w.team_id, str(params["filename"]))
        self.uploads.append(upload)
        url = f"{self.root_url}/upload/{upload.file_id}"
        return {"ok": True, "upload_url": url, "file_id": upload.file_id}

    def _files_complete_upload_external(self, ws: _Workspace | None, params: Params, call: Call) -> JSON:
        w = self._need(ws)
        raw = params.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            raise SlackApiFailure("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise SlackApiFailure("invalid_arguments")
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            channels = [self._resolve_channel(w, params["channel_id"], "files.completeUploadExternal")]
        done: list[JSON] = []
        for item in items:
            upload = next((u for u in self.uploads
                           if u.file_id == item.get("id") and u.team_id == w.team_id), None)
            if upload is None or upload.data is None:
                raise SlackApiFailure("file_not_found")
            upload.title = item.get("title") or upload.filename
            upload.channels, upload.completed = channels, True
            upload.initial_comment = params.get("initial_comment")
            upload.thread_ts = params.get("thread_ts")
            done.append(self._file_record(w, upload))
        return {"ok": True, "files": done}


# ---------------------------------------------------------------------- inbound: signatures and payloads


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with: ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``.

    Args:
        body: the exact request body bytes that will be sent.
        secret: the app's signing secret.
        timestamp: Unix seconds (default: now); apps reject ones more than 5 minutes away.

    Returns:
        ``{"X-Slack-Request-Timestamp": "<ts>", "X-Slack-Signature": "v0=<hex HMAC-SHA256>"}`` where the HMAC
        key is ``secret`` and the message ``b"v0:<ts>:" + body``.
    """
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    digest = hmac.new(secret.encode("utf-8"), b"v0:" + ts.encode("ascii") + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def _new_ts() -> str:
    return f"{time.time():.6f}"


def event_callback(team_id: str, event: Mapping[str, Any], event_id: str | None = None,
                   event_time: int | None = None, *, api_app_id: str = APP_ID, bot_user_id: str = "U_BOT",
                   token: str = VERIFICATION_TOKEN) -> JSON:
    """The Events API envelope Slack POSTs (``type: event_callback``) around ``event``.

    Args:
        team_id: the workspace the event happened in.
        event: the inner event (see :func:`message_event`, :func:`app_mention_event`).
        event_id: ``Ev...`` id, unique per event (Slack keeps it across retries); default: a random one.
        event_time: Unix seconds; default: now.
        api_app_id: the receiving app; bot_user_id: the authorised installation's bot user.
        token: the deprecated verification token.

    Returns:
        A JSON-ready dict: ``token``, ``team_id``, ``context_team_id``, ``context_enterprise_id``,
        ``api_app_id``, ``event``, ``type``, ``event_id``, ``event_time``, ``authorizations``,
        ``is_ext_shared_channel``, ``event_context``.
    """
    eid = event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"
    return {
        "token": token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": eid,
        "event_time": int(time.time()) if event_time is None else int(event_time),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{base64.urlsafe_b64encode(eid.encode()).decode().rstrip('=')}",
    }


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def message_event(channel: str, user: str | None, text: str | None, ts: str | None = None,
                  thread_ts: str | None = None, **extra: Any) -> JSON:
    """A ``message`` event as Slack sends it inside :func:`event_callback`.

    Args:
        channel: channel id (``C...``; ``D...`` gives ``channel_type: im``, ``G...`` ``group``).
        user: the author's user id, or ``None`` to omit it (bot messages, ``message_changed``).
        text: the text, or ``None`` to omit it.
        ts: the message's ``"seconds.micros"`` timestamp (default: now); also used as ``event_ts``.
        thread_ts: the thread root's ts for a reply.
        **extra: more keys, overriding the defaults (``subtype``, ``bot_id``, ``channel_type``, ``message``,
            ``team``...); a ``None`` value removes the key.

    Returns:
        The event dict; human messages (a ``user`` and no ``subtype``/``bot_id``) get a ``client_msg_id``.
    """
    stamp = ts or _new_ts()
    event: JSON = {"type": "message", "channel": channel, "user": user, "text": text, "ts": stamp,
                   "event_ts": stamp, "channel_type": _channel_type(channel)}
    if thread_ts:
        event["thread_ts"] = thread_ts
    if user is not None and "subtype" not in extra and "bot_id" not in extra:
        event["client_msg_id"] = str(uuid.uuid4())
    event.update(extra)
    return {k: v for k, v in event.items() if v is not None}


def app_mention_event(channel: str, user: str, text: str, ts: str | None = None, thread_ts: str | None = None,
                      **extra: Any) -> JSON:
    """An ``app_mention`` event (sent alongside the ``message`` event for the same ts when the app has both
    subscriptions); arguments as :func:`message_event`. Returns the event dict."""
    stamp = ts or _new_ts()
    event: JSON = {"type": "app_mention", "user": user, "text": text, "ts": stamp, "channel": channel,
                   "event_ts": stamp, "client_msg_id": str(uuid.uuid4())}
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return {k: v for k, v in event.items() if v is not None}


def _channel_name(channel_id: str) -> str:
    return "directmessage" if channel_id.startswith("D") else channel_id.lower()


def slash_command_form(command: str, text: str, team_id: str, channel_id: str, user_id: str, user_name: str,
                       response_url: str = "https://hooks.slack.com/commands/T0/1/fake",
                       trigger_id: str = "13345224609.738474920.8088930838d88f008e0", *,
                       team_domain: str | None = None, channel_name: str | None = None,
                       api_app_id: str = APP_ID, token: str = VERIFICATION_TOKEN) -> bytes:
    """A slash command's request body, ``application/x-www-form-urlencoded`` as Slack sends it (field order
    of Slack's docs, spaces as ``+``, ``/`` as ``%2F``).

    Args:
        command: ``"/event"``; text: everything after the command (may be empty).
        team_id, channel_id, user_id, user_name: where and by whom.
        response_url: where the app answers (see :meth:`FakeSlack.new_response_url`).
        trigger_id: opens a modal within 3 s.
        team_domain: default derived from the team id; channel_name: default ``directmessage`` for ``D...``
            channels, else the lowercased id.
        api_app_id, token: the app id and the deprecated verification token.

    Returns:
        The UTF-8 body bytes; sign them with :func:`sign`.
    """
    fields = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain or team_id.lower().replace("_", "-")),
        ("channel_id", channel_id),
        ("channel_name", channel_name or _channel_name(channel_id)),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ]
    return urlencode(fields).encode("utf-8")
