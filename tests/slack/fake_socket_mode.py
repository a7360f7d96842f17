"""A loopback fake of Slack's Socket Mode WebSocket, for the real slack-sdk Socket Mode client.

Slack's Socket Mode (https://api.slack.com/apis/socket-mode): the app calls ``apps.connections.open`` with
its app-level token and gets a WebSocket URL; Slack then sends ``{"type": "hello"}`` and, for every event,
command or button press, an envelope ``{"envelope_id", "type": "events_api"|"slash_commands"|"interactive",
"payload", "accepts_response_payload"}`` that the app must acknowledge within 3 seconds by sending back
``{"envelope_id": ...}`` (plus a ``payload`` for some). :class:`FakeSocketMode` serves that WebSocket on
``127.0.0.1`` (aiohttp, its own event loop in a daemon thread; a non-443 port, so slack-sdk's built-in client
connects without TLS), sends envelopes on request and records the acknowledgements with their timing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web


class FakeSocketMode:
    """The Socket Mode side of Slack: ``url`` to hand out from ``apps.connections.open``."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-socket-mode")
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = threading.Event()
        self._lock = threading.Condition()
        self.acks: dict[str, tuple[float, dict[str, Any]]] = {}
        """``{envelope_id: (monotonic time of the ack, the ack message)}``."""
        self.sent: dict[str, float] = {}
        """``{envelope_id: monotonic time it was sent}``."""
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Block until a client has connected (and been sent ``hello``)."""
        if not self._connected.wait(timeout):
            raise TimeoutError("no Socket Mode client connected")

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Send an envelope of ``kind`` (``events_api``, ``slash_commands``, ``interactive``); returns its
        id."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        message = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                   "accepts_response_payload": kind != "events_api", "retry_attempt": 0, "retry_reason": ""}
        with self._lock:
            self.sent[envelope_id] = time.monotonic()
        sending = self._sockets[-1].send_str(json.dumps(message))
        asyncio.run_coroutine_threadsafe(sending, self._loop).result(5)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> float:
        """Seconds from sending the envelope to its acknowledgement; raises ``TimeoutError``."""
        end = time.monotonic() + timeout
        with self._lock:
            while envelope_id not in self.acks:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no ack for envelope {envelope_id}")
                self._lock.wait(left)
            return self.acks[envelope_id][0] - self.sent[envelope_id]

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0FAKEAPP1"}}))
        self._connected.set()
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "envelope_id" in data:
                with self._lock:
                    self.acks[str(data["envelope_id"])] = (time.monotonic(), data)
                    self._lock.notify_all()
        return ws
