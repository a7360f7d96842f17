"""A loopback fake of a Wechaty puppet service gateway: a ``grpclib`` server speaking the ``wechaty.Puppet``
service with ``wechaty-grpc``'s message types, for the real adapter to connect to.

It keeps contacts, rooms and messages; emits events on every open ``Event`` stream (a login first when the
account is logged in, as gateways do on subscription, then ``replay`` message ids, as gateways re-deliver
after a reconnect); records every ``MessageSendText`` and echoes it back as a message event from the bot's
own account, as a real gateway does. It runs on an asyncio loop in a background thread
(:class:`LoopThread`); the test thread drives it through thread-safe methods.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream
from wechaty_grpc.wechaty import puppet as pb

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in a daemon thread; :meth:`call` runs a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-wechat-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@dataclass
class Sent:
    """One ``MessageSendText`` the fake received."""

    conversation: str
    text: str
    mention_ids: list[str]
    at: float


@dataclass
class FakePuppet:
    """The fake gateway. Start it with :meth:`start` on a :class:`LoopThread` (``port=0``: any free port)."""

    account_id: str = "wxid_bot"
    account_name: str = "CommunityBot"
    logged_in: bool = True
    contacts: dict[str, str] = field(default_factory=dict)
    room_aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    messages: dict[str, pb.MessagePayloadResponse] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    replay: list[str] = field(default_factory=list)
    starts: int = 0
    metadata: list[dict[str, str]] = field(default_factory=list)
    echo_sends: bool = True
    answer_dings: bool = True

    def __post_init__(self) -> None:
        self.contacts.setdefault(self.account_id, self.account_name)
        self._ids = itertools.count(1000)
        self._streams: list[asyncio.Queue[pb.EventResponse | BaseException | None]] = []
        self._cond = threading.Condition()
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> int:
        self._loop = asyncio.get_running_loop()
        self._server = Server([self])
        await self._server.start("127.0.0.1", port)
        assert self._server._server is not None  # noqa: SLF001 - grpclib keeps the asyncio server there
        self.port = self._server._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # noqa: SLF001
        return self.port

    async def stop(self) -> None:
        for queue in self._streams:
            queue.put_nowait(None)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- test controls (any thread) -------------------------------------------------------------------

    def add_message(
        self,
        *,
        text: str = "",
        from_id: str = "wxid_member",
        room_id: str = "",
        type: pb.MessageType = pb.MessageType.MESSAGE_TYPE_TEXT,  # noqa: A002 - the payload's name
        timestamp: float | None = None,
        mention_ids: Sequence[str] = (),
        message_id: str | None = None,
        millis: bool = False,
    ) -> str:
        """Store a message payload (not emitted yet); returns its id."""
        mid = message_id or str(next(self._ids))
        ts = time.time() if timestamp is None else timestamp
        self.messages[mid] = pb.MessagePayloadResponse(
            id=mid,
            text=text,
            timestamp=int(ts * 1000) if millis else int(ts),
            type=type,
            from_id=from_id,
            room_id=room_id,
            to_id="" if room_id else self.account_id,
            mention_ids=list(mention_ids),
        )
        return mid

    def say(self, text: str, **kwargs: Any) -> str:
        """Store a message and emit its event; returns its id."""
        mid = self.add_message(text=text, **kwargs)
        self.emit(pb.EventType.EVENT_TYPE_MESSAGE, {"messageId": mid})
        return mid

    def emit(self, kind: pb.EventType, payload: dict[str, Any] | str) -> None:
        """Emit an event on every open stream (``payload`` is sent as JSON unless already a string)."""
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        self._each_stream(pb.EventResponse(type=kind, payload=raw))

    def drop_streams(self) -> None:
        """End every open event stream with UNAVAILABLE (the connection drops)."""
        self._each_stream(GRPCError(Status.UNAVAILABLE, "fake gateway dropped the stream"))

    def _each_stream(self, item: pb.EventResponse | BaseException) -> None:
        assert self._loop is not None
        for queue in list(self._streams):
            self._loop.call_soon_threadsafe(queue.put_nowait, item)

    def open_streams(self) -> int:
        return len(self._streams)

    def wait_sent(self, count: int, timeout: float = 10.0) -> list[Sent]:
        """Wait until at least ``count`` sends arrived; returns all of them."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.sent) < count and time.monotonic() < end:
                self._cond.wait(0.05)
            return list(self.sent)

    def wait_streams(self, count: int = 1, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self._streams) < count and time.monotonic() < end:
            time.sleep(0.02)
        assert len(self._streams) >= count, "the adapter did not open the event stream"

    # --- the gRPC service -----------------------------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        def unary(method: Callable[..., Any], req: type, resp: type) -> Handler:
            return Handler(method, Cardinality.UNARY_UNARY, req, resp)

        return {
            "/wechaty.Puppet/Start": unary(self._start, pb.StartRequest, pb.StartResponse),
            "/wechaty.Puppet/Stop": unary(self._stop, pb.StopRequest, pb.StopResponse),
            "/wechaty.Puppet/Ding": unary(self._ding, pb.DingRequest, pb.DingResponse),
            "/wechaty.Puppet/Event": Handler(
                self._event, Cardinality.UNARY_STREAM, pb.EventRequest, pb.EventResponse
            ),
            "/wechaty.Puppet/MessagePayload": unary(
                self._message_payload, pb.MessagePayloadRequest, pb.MessagePayloadResponse
            ),
            "/wechaty.Puppet/MessageSendText": unary(
                self._send_text, pb.MessageSendTextRequest, pb.MessageSendTextResponse
            ),
            "/wechaty.Puppet/ContactPayload": unary(
                self._contact_payload, pb.ContactPayloadRequest, pb.ContactPayloadResponse
            ),
            "/wechaty.Puppet/RoomMemberPayload": unary(
                self._room_member_payload, pb.RoomMemberPayloadRequest, pb.RoomMemberPayloadResponse
            ),
        }

    async def _start(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        self.starts += 1
        self.metadata.append({k: str(v) for k, v in dict(stream.metadata or {}).items()})
        await stream.send_message(pb.StartResponse())

    async def _stop(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.StopResponse())

    async def _ding(self, stream: Stream[Any, Any]) -> None:
        request: Any = await stream.recv_message()
        await stream.send_message(pb.DingResponse())
        if self.answer_dings:
            self.emit(pb.EventType.EVENT_TYPE_DONG, {"data": request.data})

    async def _event(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        queue: asyncio.Queue[pb.EventResponse | BaseException | None] = asyncio.Queue()
        if self.logged_in:
            queue.put_nowait(pb.EventResponse(
                type=pb.EventType.EVENT_TYPE_LOGIN, payload=json.dumps({"contactId": self.account_id})
            ))
        for mid in self.replay:
            queue.put_nowait(pb.EventResponse(
                type=pb.EventType.EVENT_TYPE_MESSAGE, payload=json.dumps({"messageId": mid})
            ))
        self._streams.append(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                await stream.send_message(item)
        finally:
            self._streams.remove(queue)

    async def _message_payload(self, stream: Stream[Any, Any]) -> None:
        request: Any = await stream.recv_message()
        payload = self.messages.get(request.id)
        if payload is None:
            raise GRPCError(Status.NOT_FOUND, f"no message {request.id}")
        await stream.send_message(payload)

    async def _send_text(self, stream: Stream[Any, Any]) -> None:
        request: Any = await stream.recv_message()
        with self._cond:
            self.sent.append(Sent(request.conversation_id, request.text, list(request.mentonal_ids),
                                  time.monotonic()))
            self._cond.notify_all()
        conversation = request.conversation_id
        room = conversation if conversation.endswith("@chatroom") else ""
        mid = self.add_message(text=request.text, from_id=self.account_id, room_id=room)
        await stream.send_message(pb.MessageSendTextResponse(id=mid))
        if self.echo_sends:
            self.emit(pb.EventType.EVENT_TYPE_MESSAGE, {"messageId": mid})

    async def _contact_payload(self, stream: Stream[Any, Any]) -> None:
        request: Any = await stream.recv_message()
        name = self.contacts.get(request.id, "")
        await stream.send_message(pb.ContactPayloadResponse(id=request.id, name=name))

    async def _room_member_payload(self, stream: Stream[Any, Any]) -> None:
        request: Any = await stream.recv_message()
        alias = self.room_aliases.get((request.id, request.member_id), "")
        await stream.send_message(pb.RoomMemberPayloadResponse(
            id=request.member_id, room_alias=alias, name=self.contacts.get(request.member_id, "")
        ))
