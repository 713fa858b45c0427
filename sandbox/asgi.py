"""The thin ASGI shell around `SandboxEngine`: no framework, two `send`s per ordinary request.

Clocks and sleep are injected so tests can drive limits with a `ManualClock` and observe latency
without waiting. An abrupt connection reset needs the transport, which ASGI does not expose; the
sandbox's own uvicorn protocol (`botstream.sandbox.server`) puts it in `scope["extensions"]` under
`TRANSPORT_EXTENSION`, and the reset is then a TCP RST (SO_LINGER 0 + abort). Under any other
server the fallback sends response headers promising a body and then fails, which uvicorn turns
into a closed connection mid-response.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from botstream.sandbox.control import CONTROL_PREFIX, handle_control
from botstream.sandbox.engine import SandboxEngine
from botstream.sandbox.http import Reply, Request, json_reply
from botstream.sandbox.upstream import UPSTREAM_PREFIX

__all__ = ["Clock", "SandboxApp", "Sleep", "TRANSPORT_EXTENSION"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

TRANSPORT_EXTENSION = "botstream.sandbox.transport"
_LINGER_ZERO = struct.pack("ii", 1, 0)


class ResetFallback(Exception):
    """Raised after promising a body, to make a server without our protocol drop the connection."""


class SandboxApp:
    """ASGI 3 application. `engine` holds all state; one app per engine."""

    def __init__(
        self,
        engine: SandboxEngine,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        control_token: str | None = None,
    ) -> None:
        self.engine = engine
        self.control_token = control_token  # None: the control API is open (in-process tests only)
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        body: bytes = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        req = Request(
            scope["method"],
            scope["path"],
            scope["query_string"].decode("latin-1"),
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body,
        )
        if req.path.startswith(CONTROL_PREFIX):
            await _respond(send, handle_control(self.engine, req, self.control_token))
            return
        if req.path.startswith(UPSTREAM_PREFIX):
            await self._upstream(req, receive, send)
            return
        outcome = self.engine.handle(req, self.clock(), self.wall_clock())
        if outcome.delay:
            await self.sleep(outcome.delay)
        if outcome.reset:
            await _reset(scope, receive, send)
            return
        if outcome.hold and await _client_gave_up(receive, outcome.hold):
            return
        await _respond(send, outcome.reply)


    async def _upstream(self, req: Request, receive: Receive, send: Send) -> None:
        """The generic upstream. Its latency and hangs are real time and end early when the client
        disconnects, so the measured concurrency is what the callers really hold open."""
        upstream = self.engine.upstream
        outcome = upstream.handle(req)
        if outcome is None:
            await _respond(send, json_reply(404, {"error": "not_found"}))
            return
        stats = upstream.stats
        stats.enter(outcome.name)
        try:
            gone = bool(outcome.delay) and await _client_gave_up(receive, outcome.delay)
            if not gone and outcome.hold:
                gone = await _client_gave_up(receive, outcome.hold)
            if gone:
                stats.count(outcome.name, "disconnected")
                return
            await _respond(send, outcome.reply)
        finally:
            stats.leave(outcome.name)


async def _respond(send: Send, reply: Reply) -> None:
    headers = [(b"content-length", str(len(reply.body)).encode()), *reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _client_gave_up(receive: Receive, hold: float) -> bool:
    """Wait up to `hold` seconds; True as soon as the client disconnects."""
    try:
        message = await asyncio.wait_for(receive(), hold)
    except TimeoutError:
        return False
    return bool(message["type"] == "http.disconnect")


async def _reset(scope: Scope, receive: Receive, send: Send) -> None:
    transport = (scope.get("extensions") or {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
        raise ResetFallback("sandbox fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError:  # pragma: no cover - platform without SO_LINGER: plain close
            pass
    transport.abort()
    # Let the server observe the loss before we return, so it does not answer a 500 instead.
    try:
        await asyncio.wait_for(receive(), 1.0)
    except TimeoutError:  # pragma: no cover
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
