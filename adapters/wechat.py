"""The WeChat adapter: a Wechaty puppet service gRPC client that behaves like a careful group member.

Any Wechaty puppet provider exposes its WeChat account through the puppet service, a gRPC ``wechaty.Puppet``
service (https://wechaty.js.org/docs/puppet-services/). This adapter speaks it with the message types and
stub of ``wechaty-grpc`` over ``grpclib``: ``Start``, then the server-streamed ``Event`` RPC, and unary
calls for payloads and sends. (``wechaty-puppet-service``'s own client is not used: it looks the endpoint up
on a public web service, probes it over telnet, reads bare ``TOKEN`` variables and never reconnects.)

Inbound:

* the event stream is read by one task; a gateway that goes quiet past ``heartbeat_timeout`` gets a
  ``Ding``, and if still quiet the connection is dropped; any drop is followed by a reconnect with
  exponential backoff and full jitter (``tenacity``'s ``wait_random_exponential``: a random wait up to
  ``reconnect_initial * 2**attempt``, at most ``reconnect_max``; "Exponential Backoff And Jitter", AWS
  Architecture Blog, 2015), the backoff starting over after a connection that worked;
* ``login`` / ``logout`` / ``scan`` events keep the account's state (:meth:`WeChatAdapter.health`), logged on
  every change; the admins get a direct message when the account is back after a logout or a long outage,
  and when the daily send cap is reached;
* a ``message`` event's payload is fetched and dropped when it is the bot's own (its id, or a message it
  sent), older than ``stale_after`` seconds or dated well before the connection was made (the backlog
  replayed after a (re)connect, case W2), recalled, or not text
  (image, voice, file, link card, mini program, ...: at most one "I read text only" per person in a direct
  chat, case W3); in rooms the bot answers when mentioned (:func:`adapters.wechat_markup.find_mention`,
  case W1), to commands, to RSVP reply codes (``报名 3``), or to everything in rooms the organisers set to
  listen (``listen_channels``); the router decides the last three;
* every message carries the platform key ``wechat:<message id>``, so a message delivered twice (a replay
  after a reconnect, another process) is answered once.

The core runs on one worker thread, in arrival order, so the event stream is never blocked by a model.

Outbound: replies go to the conversation they came from (a private reply to the sender's direct chat),
rendered as plain text with reply codes for RSVP buttons, split at line boundaries under
``max_message_bytes``, sent in order through a paced :class:`adapters.outbox.Outbox` (``send_interval``
per conversation, ``send_spacing`` between any two sends, random jitter, ``daily_cap`` per account).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty import puppet as pb

from adapters.outbox import Outbox
from adapters.wechat_markup import MENTION_SPACE, find_mention, render_text, split_text
from bot.commands.rsvp import command_for_reply_code
from bot.messages import HandledMessage, IncomingMessage, Reply
from bot.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

PLATFORM = "wechat"
#: The intent of the message a room join becomes (the core's onboarding welcomes the newcomer).
JOINED_INTENT = "member_joined"
Handle = Callable[[IncomingMessage], HandledMessage]

#: Message types that carry no text to read (everything but text; recalled messages are dropped silently).
TEXT_TYPE = pb.MessageType.MESSAGE_TYPE_TEXT
RECALLED_TYPE = pb.MessageType.MESSAGE_TYPE_RECALLED
#: gRPC statuses that mean the connection, not one call, failed.
CONNECTION_STATUSES = frozenset({Status.UNAVAILABLE, Status.UNAUTHENTICATED, Status.CANCELLED})
#: The one note a person gets in a direct chat after sending something that is not text (case W3).
TEXT_ONLY_NOTE = "我只能读文字消息，请用文字提问。\nI can only read text messages: please ask in words."
#: Ids of the bot's own recent sends kept to recognise their echoes (before the account id is known).
SENT_IDS_KEPT = 1000
#: Seconds a cached name (a contact's nickname, a room alias) is trusted.
NAME_TTL = 600.0


class Disconnected(Exception):  # noqa: N818 - reads as what happened
    """The connection to the gateway ended. ``healthy``: it worked before ending (the backoff starts over)."""

    def __init__(self, reason: str, *, healthy: bool = False) -> None:
        super().__init__(reason)
        self.healthy = healthy


def _retryable(exc: BaseException) -> bool:
    """Failures worth another connection attempt: network errors, gRPC errors, an unhealthy drop."""
    if isinstance(exc, Disconnected):
        return not exc.healthy
    return isinstance(exc, (OSError, GRPCError, StreamTerminatedError, TimeoutError, ConnectionError))


@dataclass
class Health:
    """What the adapter knows of its connection and account (a snapshot from :meth:`WeChatAdapter.health`).

    Attributes:
        state: ``connecting``, ``connected`` (no login yet), ``waiting_for_scan``, ``logged_in``,
            ``logged_out`` or ``stopped``.
        account_id / account_name: the logged-in account's contact id and nickname.
        connected_since: when the current connection started (``None`` while down).
        last_event_at: the last event (heartbeats included) from the gateway.
        reconnects: connection attempts after the first.
        stale_skipped: messages not answered because they were older than ``stale_after``.
        sent_last_day: messages sent in the last 24 hours (against ``daily_cap``).
        qr_code: the login QR code's content while ``waiting_for_scan``.
    """

    state: str = "connecting"
    account_id: str = ""
    account_name: str = ""
    connected_since: datetime | None = None
    last_event_at: datetime | None = None
    reconnects: int = 0
    stale_skipped: int = 0
    sent_last_day: int = 0
    qr_code: str = ""


@dataclass(frozen=True, slots=True)
class _Part:
    """One text message to send: where, what, and whom it @mentions."""

    conversation: str
    text: str
    mention_ids: tuple[str, ...] = ()


@dataclass
class _Cached:
    """A name from the gateway and when it was fetched (event loop seconds)."""

    value: str
    at: float


def _endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` (a ``grpc://``/``http://`` prefix is allowed) as (host, port).

    Raises:
        ValueError: no port, or not a number.
    """
    rest = endpoint.strip().split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"COMMUNITYBOT_WECHAT_ENDPOINT must be host:port (e.g. 127.0.0.1:8788), not {endpoint!r}"
        )
    return host.strip("[]"), int(port)


def message_time(timestamp: int, *, now: datetime) -> datetime:
    """A payload's ``timestamp`` as an aware UTC datetime: seconds, or milliseconds when above 10^11 (puppet
    providers differ); 0 (unknown) reads as ``now``."""
    if timestamp <= 0:
        return now
    seconds = timestamp / 1000.0 if timestamp > 100_000_000_000 else float(timestamp)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return now


class WeChatAdapter:
    """Connects a Wechaty puppet service gateway to the bot core.

    Args:
        handle: the core (``bot.app.App.handle``): one message in, what the bot did out; never raises.
        endpoint: the gateway's ``host:port``.
        token: the puppet service token ("" for a local gateway without one).
        community: the community of the account's rooms and direct chats.
        bot_names: extra names the bot is @mentioned by (its nickname and room aliases come from the
            gateway).
        tls: use TLS; ``tls_server_name`` is the name to verify (default: the endpoint's host).
        stale_after: seconds after which a message is not answered (case W2).
        replay_grace: a message dated up to this many seconds before the connection was made is still
            answered (clock skew, a question asked during a short reconnect); older ones are the backlog a
            gateway replays on connecting, never answered whatever ``stale_after`` says.
        send_interval: seconds between two sends to one conversation; ``send_spacing`` between any two;
            ``jitter`` stretches each gap by up to that fraction.
        daily_cap: most sends in any 24 hours.
        max_message_bytes: the byte limit of one sent text.
        admin_ids: returns the contact ids of the community's admins (for health notices).
        heartbeat_timeout: seconds of silence from the gateway before a ``Ding``, and again before
            reconnecting.
        reconnect_initial / reconnect_max: the backoff's first and longest wait, in seconds.
        call_timeout: seconds a unary call may take.
        notice_after: an outage longer than this (seconds) is reported to the admins when it ends.
        clock: the current aware UTC time (tests inject one).

    Raises:
        ValueError: a malformed endpoint (the message shows the expected form).
    """

    def __init__(
        self,
        *,
        handle: Handle,
        endpoint: str,
        token: str = "",
        community: str = "default",
        bot_names: Sequence[str] = (),
        tls: bool = False,
        tls_server_name: str | None = None,
        stale_after: float = 120.0,
        replay_grace: float = 30.0,
        send_interval: float = 2.0,
        send_spacing: float = 1.0,
        jitter: float = 0.3,
        daily_cap: int = 500,
        max_message_bytes: int = 2000,
        admin_ids: Callable[[], Sequence[str]] = lambda: (),
        heartbeat_timeout: float = 90.0,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 60.0,
        call_timeout: float = 15.0,
        notice_after: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._handle = handle
        self.host, self.port = _endpoint(endpoint)
        self._token = token
        self.community = community
        self._bot_names = tuple(n.strip() for n in bot_names if n.strip())
        self._tls = tls
        self._tls_server_name = tls_server_name
        self.stale_after = stale_after
        self.replay_grace = replay_grace
        self.max_message_bytes = max_message_bytes
        self._admin_ids = admin_ids
        self.heartbeat_timeout = heartbeat_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.call_timeout = call_timeout
        self.notice_after = notice_after
        self.clock = clock
        self._health = Health()
        self._health_lock = threading.Lock()
        self._stub: PuppetStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()
        self._stopping = False
        self._names: dict[tuple[str, str], _Cached] = {}
        self._sent_ids: deque[str] = deque(maxlen=SENT_IDS_KEPT)
        self._told_text_only: set[str] = set()
        self._down_since: datetime | None = None
        self._logged_out = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wechat-core")
        self._pending: set[Future[None]] = set()
        self.outbox = Outbox(
            self._send,
            interval=send_interval,
            spacing=send_spacing,
            jitter=jitter,
            daily_cap=daily_cap,
            on_cap_reached=self._cap_reached,
            name="wechat-outbox",
        )

    # --- state ------------------------------------------------------------------------------------------

    def health(self) -> Health:
        """A snapshot of the connection and account state."""
        with self._health_lock:
            snapshot = Health(**vars(self._health))
        snapshot.sent_last_day = self.outbox.sent_last_day()
        return snapshot

    def _set_state(self, state: str, **changes: Any) -> None:
        with self._health_lock:
            before = self._health.state
            self._health.state = state
            for key, value in changes.items():
                setattr(self._health, key, value)
        if before != state:
            log.info("wechat: %s -> %s", before, state)

    @property
    def account_id(self) -> str:
        """The logged-in account's contact id ("" before login)."""
        with self._health_lock:
            return self._health.account_id

    # --- connection -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and serve until :meth:`stop` (or cancellation): reconnects after every drop, with
        exponential backoff and jitter while the gateway cannot be reached."""
        self._loop = asyncio.get_running_loop()
        first = True
        while not self._stopping:
            try:
                async for attempt in AsyncRetrying(
                    wait=wait_random_exponential(multiplier=self.reconnect_initial, max=self.reconnect_max),
                    retry=retry_if_exception(_retryable),
                    before_sleep=self._before_retry,
                    reraise=True,
                ):
                    with attempt:
                        if not first:
                            with self._health_lock:
                                self._health.reconnects += 1
                        first = False
                        await self._session()
            except Disconnected as exc:  # a connection that worked ended: connect again after a short pause
                if self._stopping:
                    break
                log.warning("wechat: %s; reconnecting", exc)
                await asyncio.sleep(self.reconnect_initial)
        self._set_state("stopped")

    def _before_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if self._down_since is None:
            self._down_since = self.clock()
        if isinstance(exc, GRPCError) and exc.status in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED):
            log.error("wechat: the gateway refused the token (%s); check COMMUNITYBOT_WECHAT_TOKEN",
                      exc.message)
        log.warning(
            "wechat: cannot reach the gateway at %s:%d (%s: %s); retrying in %.1f s (attempt %d)",
            self.host, self.port, type(exc).__name__, exc, wait, state.attempt_number,
        )

    def _channel(self) -> Channel:
        context: ssl.SSLContext | None = None
        if self._tls:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["h2"])
        channel = Channel(host=self.host, port=self.port, ssl=context)
        if self._token or self._tls_server_name:
            # puppet-service gateways before 0.30 read the token from the :authority header
            channel._authority = self._tls_server_name or self._token  # noqa: SLF001 - grpclib has no option
        return channel

    async def _session(self) -> None:
        """One connection: Start, then read events until the stream ends or goes silent."""
        channel = self._channel()
        metadata = {"authorization": f"Wechaty {self._token}"} if self._token else None
        stub = PuppetStub(channel, timeout=self.call_timeout, metadata=metadata)
        stream_stub = PuppetStub(channel, metadata=metadata)  # the event stream has no deadline
        healthy = False
        try:
            await stub.start()
            self._stub = stub
            self._connected.set()
            now = self.clock()
            self._set_state("connected" if not self.account_id else "logged_in", connected_since=now)
            self._report_recovery(now)
            async for event in self._events(stream_stub, ding=stub):
                healthy = True
                await self._on_event(event)
            raise Disconnected("the gateway closed the event stream", healthy=healthy)
        except (GRPCError, StreamTerminatedError, OSError) as exc:
            if healthy:
                why = f"the event stream broke ({type(exc).__name__}: {exc})"
                raise Disconnected(why, healthy=True) from exc
            raise
        finally:
            self._connected.clear()
            self._stub = None
            channel.close()
            with self._health_lock:
                self._health.connected_since = None
            if healthy and self._down_since is None:
                self._down_since = self.clock()

    async def _events(self, stub: PuppetStub, *, ding: PuppetStub) -> AsyncIterator[pb.EventResponse]:
        """The event stream of ``stub`` with a watchdog: silence for ``heartbeat_timeout`` gets a ``Ding``
        (through ``ding``, whose calls have a deadline); silence again ends the connection."""
        queue: asyncio.Queue[pb.EventResponse | BaseException | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for event in stub.event():
                    await queue.put(event)
                await queue.put(None)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                await queue.put(exc)

        reader = asyncio.create_task(read())
        pinged = False
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
                    # arrives as the item does (gh-86296), and run() would then never stop
                    async with asyncio.timeout(self.heartbeat_timeout):
                        item = await queue.get()
                except TimeoutError:
                    if pinged:
                        raise Disconnected(
                            f"no event from the gateway for {2 * self.heartbeat_timeout:.0f} s", healthy=True
                        ) from None
                    pinged = True
                    await ding.ding(data="communitybot")
                    continue
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                pinged = False
                with self._health_lock:
                    self._health.last_event_at = self.clock()
                yield item
        finally:
            reader.cancel()
            # the reader's own end is collected; a cancellation of this task still propagates
            await asyncio.gather(reader, return_exceptions=True)

    def _report_recovery(self, now: datetime) -> None:
        """After an outage longer than ``notice_after``, log it and tell the admins."""
        down, self._down_since = self._down_since, None
        if down is None:
            return
        minutes = (now - down).total_seconds() / 60
        log.warning("wechat: connected again after %.1f min without the gateway", minutes)
        if (now - down).total_seconds() >= self.notice_after:
            self._notify_admins(
                f"Community bot: I was disconnected from WeChat for {minutes:.0f} min and am back now. "
                "Messages older than a few minutes were not answered.",
                f"社区机器人：我与微信断开了 {minutes:.0f} 分钟，现已恢复。超过几分钟的旧消息没有回复。",
            )

    async def stop(self) -> None:
        """Stop reading events, send what is queued, and close."""
        self._stopping = True
        self._connected.clear()
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Wait for the messages being handled, send what is queued, stop the worker and the outbox."""
        self._stopping = True
        for pending in list(self._pending):
            with contextlib.suppress(Exception):
                pending.result(timeout=30)
        self._worker.shutdown(wait=True)
        self.outbox.close()

    # --- events -----------------------------------------------------------------------------------------

    async def _on_event(self, event: pb.EventResponse) -> None:
        try:
            payload = json.loads(event.payload) if event.payload else {}
        except json.JSONDecodeError:
            log.warning("wechat: an event of type %s with a payload that is not JSON: %.200r",
                        event.type, event.payload)
            return
        if not isinstance(payload, dict):
            payload = {}
        kind = event.type
        if kind == pb.EventType.EVENT_TYPE_MESSAGE:
            message_id = str(payload.get("messageId") or "")
            if message_id:
                try:
                    await self._on_message(message_id)
                except GRPCError as exc:
                    if exc.status in CONNECTION_STATUSES:
                        raise
                    log.warning("wechat: the gateway has no payload for message %s (%s: %s)",
                                message_id, exc.status.name, exc.message)
                except (StreamTerminatedError, OSError):
                    raise
                except Exception:  # one bad message never takes the bot down
                    log.exception("wechat: failed to read message %s", message_id)
        elif kind == pb.EventType.EVENT_TYPE_LOGIN:
            await self._on_login(str(payload.get("contactId") or ""))
        elif kind == pb.EventType.EVENT_TYPE_LOGOUT:
            self._logged_out = True
            self._set_state("logged_out", account_id="")
            log.warning("wechat: the account %s logged out (%s); waiting for a new login",
                        payload.get("contactId", ""), payload.get("data", ""))
        elif kind == pb.EventType.EVENT_TYPE_SCAN:
            qr = str(payload.get("qrcode") or "")
            self._set_state("waiting_for_scan", qr_code=qr)
            log.warning("wechat: login needed: scan this QR code with the bot's WeChat account: %s",
                        qr or "(none)")
        elif kind == pb.EventType.EVENT_TYPE_ROOM_JOIN:
            await self._on_room_join(payload)
        elif kind == pb.EventType.EVENT_TYPE_ERROR:
            log.warning("wechat: the gateway reports an error: %s", payload.get("data", payload))
        elif kind == pb.EventType.EVENT_TYPE_RESET:
            raise Disconnected("the gateway asked for a reset", healthy=True)

    async def _on_room_join(self, payload: dict[str, Any]) -> None:
        """People joined a room: each becomes a ``member_joined`` message for the core's welcome (not for a
        join replayed from before the connection, nor for the bot itself)."""
        room = str(payload.get("roomId") or "")
        invitees = payload.get("inviteeIdList") or []
        if not room or not isinstance(invitees, list):
            return
        now = self.clock()
        raw = payload.get("timestamp")
        joined = message_time(int(raw), now=now) if isinstance(raw, (int, float)) else now
        if self._stale(joined, now):
            return
        for contact in (str(c) for c in invitees if c and str(c) != self.account_id):
            message = IncomingMessage(
                platform=PLATFORM,
                community=self.community,
                conversation=room,
                sender=contact,
                text="",
                received_at=joined,
                sender_name=await self._sender_name(contact, room),
                platform_key=f"{PLATFORM}:joined:{room}:{contact}:{int(joined.timestamp())}",
                intent=JOINED_INTENT,
            )
            future = self._worker.submit(self._process, message)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)

    async def _on_login(self, contact_id: str) -> None:
        name = await self._contact_name(contact_id) if contact_id else ""
        back = self._logged_out
        self._logged_out = False
        self._set_state("logged_in", account_id=contact_id, account_name=name, qr_code="")
        log.info("wechat: logged in as %s (%s)", name or "?", contact_id)
        if back:
            self._notify_admins(f"Community bot: logged in to WeChat again as {name or contact_id}.",
                                f"社区机器人：已重新登录微信（{name or contact_id}）。")

    async def _on_message(self, message_id: str) -> None:
        stub = self._stub
        if stub is None:
            return
        payload = await stub.message_payload(id=message_id)
        message = await self.incoming(payload)
        if message is None:
            return
        future = self._worker.submit(self._process, message)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def incoming(self, payload: pb.MessagePayloadResponse) -> IncomingMessage | None:
        """The :class:`IncomingMessage` of a message payload, or ``None`` when it is not for the core: the
        bot's own, stale, recalled, not text (at most one "text only" note per person in a direct chat)."""
        sender = payload.from_id
        account = self.account_id
        if not sender or (account and sender == account) or payload.id in self._sent_ids:
            return None
        now = self.clock()
        received = message_time(payload.timestamp, now=now)
        if self._stale(received, now):
            with self._health_lock:
                self._health.stale_skipped += 1
            log.info("wechat: not answering message %s from %s: %.0f s old (a replay)",
                     payload.id, received.isoformat(), (now - received).total_seconds())
            return None
        room = payload.room_id
        if payload.type == RECALLED_TYPE:
            return None
        if payload.type != TEXT_TYPE:
            if not room and sender not in self._told_text_only:
                self._told_text_only.add(sender)
                self._queue(sender, Reply(text=TEXT_ONLY_NOTE, language="zh"))
            return None
        nickname = await self._contact_name(account) if account else ""
        alias = await self._room_alias(room, account) if room else ""
        found = find_mention(payload.text or "", [nickname, alias, *self._bot_names],
                             mentioned=bool(account) and account in payload.mention_ids)
        text, mentioned = found.text, found.addressed
        command = command_for_reply_code(text)
        if command is not None:
            text = command
        return IncomingMessage(
            platform=PLATFORM,
            community=self.community,
            conversation=room or sender,
            sender=sender,
            text=text,
            received_at=received,
            sender_name=await self._sender_name(sender, room),
            is_direct=not room,
            mentions_bot=mentioned,
            platform_key=f"{PLATFORM}:{payload.id}",
        )

    def _stale(self, received: datetime, now: datetime) -> bool:
        """Too old to answer: older than ``stale_after``, or dated more than ``replay_grace`` seconds before
        the current connection was made (the backlog a gateway replays after a (re)connect, case W2)."""
        if (now - received).total_seconds() > self.stale_after:
            return True
        with self._health_lock:
            since = self._health.connected_since
        return since is not None and (since - received).total_seconds() > self.replay_grace

    # --- names ------------------------------------------------------------------------------------------

    async def _cached(self, key: tuple[str, str], fetch: Callable[[PuppetStub], Any]) -> str:
        loop_time = asyncio.get_running_loop().time()
        cached = self._names.get(key)
        if cached is not None and loop_time - cached.at < NAME_TTL:
            return cached.value
        stub = self._stub
        value = ""
        if stub is not None:
            try:
                value = str(await fetch(stub) or "")
            except (GRPCError, StreamTerminatedError, OSError, TimeoutError) as exc:
                log.info("wechat: no name for %s (%s)", key, exc)
                return cached.value if cached else ""
        self._names[key] = _Cached(value, loop_time)
        return value

    async def _contact_name(self, contact_id: str) -> str:
        async def fetch(stub: PuppetStub) -> str:
            contact = await stub.contact_payload(id=contact_id)
            return contact.name or contact.alias

        return await self._cached(("", contact_id), fetch)

    async def _room_alias(self, room_id: str, contact_id: str) -> str:
        if not contact_id:
            return ""

        async def fetch(stub: PuppetStub) -> str:
            member = await stub.room_member_payload(id=room_id, member_id=contact_id)
            return member.room_alias

        return await self._cached((room_id, contact_id), fetch)

    async def _sender_name(self, sender: str, room: str) -> str:
        alias = await self._room_alias(room, sender) if room else ""
        return alias or await self._contact_name(sender)

    # --- core and outbound ------------------------------------------------------------------------------

    def _process(self, message: IncomingMessage) -> None:
        """On the worker thread: the core handles the message, the replies are queued."""
        try:
            result = self._handle(message)
            if result.duplicate:
                return
            for reply in result.replies:
                to_sender = reply.private and not message.is_direct
                target = message.sender if to_sender else message.conversation
                mention = message.sender if not message.is_direct and not to_sender else None
                self._queue(target, reply, mention=mention, mention_name=message.sender_name)
        except Exception:  # noqa: BLE001 - a crash in one message never takes the bot down
            log.exception("wechat: failed to answer message %s", message.platform_key)

    def _queue(self, conversation: str, reply: Reply, *, mention: str | None = None,
               mention_name: str = "") -> list[Future[Any]]:
        """Render ``reply``, split it under the byte limit and queue the parts in order; their futures."""
        text = render_text(reply)
        if mention and mention_name:
            text = f"@{mention_name}{MENTION_SPACE}{text}"
        futures = []
        for index, part in enumerate(split_text(text, max_bytes=self.max_message_bytes)):
            ids = (mention,) if mention and mention_name and index == 0 else ()
            futures.append(self.outbox.submit(conversation, _Part(conversation, part, ids)))
        return futures

    def send(self, *, community: str, conversation: str, reply: Reply, timeout: float = 300.0) -> None:
        """Post a notification (scheduled work, :class:`jobs.context.Sender`): ``reply`` rendered as text to
        ``conversation`` (a room or contact id) through the paced outbox; returns once the gateway took the
        last part. ``community`` is the account's own (one account serves one community).

        Raises:
            LookupError: ``community`` is not this account's.
            DailyCapReached / ConnectionError / TimeoutError: the send did not happen.
        """
        if community != self.community:
            raise LookupError(f"the WeChat account serves {self.community!r}, not {community!r}")
        for future in self._queue(conversation, reply):
            future.result(timeout=timeout)

    def _send(self, target: Hashable, part: _Part) -> str:
        """On the outbox thread: one MessageSendText on the adapter's event loop."""
        if not self._connected.wait(timeout=max(self.call_timeout, 30.0)) or self._loop is None:
            raise ConnectionError("not connected to the WeChat gateway")
        future = asyncio.run_coroutine_threadsafe(self._send_text(part), self._loop)
        return future.result(timeout=self.call_timeout + 5)

    async def _send_text(self, part: _Part) -> str:
        stub = self._stub
        if stub is None:
            raise ConnectionError("not connected to the WeChat gateway")
        response = await stub.message_send_text(
            conversation_id=part.conversation, text=part.text, mentonal_ids=list(part.mention_ids)
        )
        sent = response.id or ""
        if sent:
            self._sent_ids.append(sent)
        return sent

    def _notify_admins(self, en: str, zh: str) -> None:
        """Send a health notice to each admin's direct chat, past the outbox (it may be over its cap)."""
        loop, stub = self._loop, self._stub
        if loop is None or stub is None:
            return
        for admin in self._admin_ids():
            asyncio.run_coroutine_threadsafe(self._send_text(_Part(admin, f"{zh}\n{en}")), loop)

    def _cap_reached(self) -> None:
        log.error("wechat: the daily send cap is reached; replies are dropped until the 24-hour window "
                  "makes room (COMMUNITYBOT_WECHAT_DAILY_SEND_CAP)")
        self._notify_admins(
            "Community bot: I reached today's WeChat send cap and stop replying for now "
            "(COMMUNITYBOT_WECHAT_DAILY_SEND_CAP).",
            "社区机器人：今天的微信发送上限已到，暂停回复（COMMUNITYBOT_WECHAT_DAILY_SEND_CAP）。",
        )




def from_settings(settings: Settings, handle: Handle, *, engine: Engine) -> WeChatAdapter:
    """The adapter a deployment's ``COMMUNITYBOT_WECHAT_*`` settings describe. The community's admins whose
    ids are written ``wechat:<contact id>`` (``/bot config admins``) get the health notices.

    Raises:
        ValueError: no endpoint, or a malformed one (the message names the setting).
    """
    if not settings.wechat_endpoint:
        raise ValueError(
            "WeChat needs the puppet service gateway: set COMMUNITYBOT_WECHAT_ENDPOINT to its host:port "
            "(and COMMUNITYBOT_WECHAT_TOKEN to its token)"
        )
    community = settings.wechat_community or settings.default_community

    def admin_ids() -> list[str]:
        from bot.community import community_settings, get_or_create_community
        from bot.db import session_scope

        with session_scope(engine) as session:
            row = get_or_create_community(session, community, settings=settings)
            admins = community_settings(row, settings=settings).admins
        return [a.split(":", 1)[1] for a in admins if a.startswith(f"{PLATFORM}:")]

    return WeChatAdapter(
        handle=handle,
        endpoint=settings.wechat_endpoint,
        token=settings.wechat_token.get_secret_value() if settings.wechat_token else "",
        community=community,
        bot_names=[n for n in settings.wechat_bot_names.split(",") if n.strip()],
        tls=settings.wechat_tls,
        tls_server_name=settings.wechat_tls_server_name,
        stale_after=settings.wechat_stale_after,
        send_interval=settings.wechat_send_interval,
        send_spacing=settings.wechat_send_spacing,
        daily_cap=settings.wechat_daily_send_cap,
        max_message_bytes=settings.wechat_max_message_bytes,
        admin_ids=admin_ids,
    )
