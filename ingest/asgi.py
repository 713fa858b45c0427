"""ASGI plumbing the ingest app needs and nothing more: types, a bounded body reader, one response.

No framework: a webhook front door does one thing per request, and every microsecond a framework
spends on routing tables and request objects is taken from the throughput ceiling (see
bench/ingest). The body reader is the part that matters for safety: it never holds more than the
limit, and it refuses a declared Content-Length over the limit before reading a single body byte
(uvicorn sends `100 Continue` only when the app first asks for the body, so a client that waits for
it never uploads the body at all).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from botstream.ingest.errors import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientDisconnected(Exception):
    """The client went away before the body was complete: there is no one to answer."""


def declared_length(headers: Mapping[str, str]) -> int | None:
    """Content-Length as sent (the HTTP parser has already refused a malformed one)."""
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole request body, or PayloadTooLarge as soon as it is known to exceed `limit` bytes.

    Reading stops at the first chunk that crosses the limit, so at most limit + one chunk of the
    body is ever consumed; the caller answers 413 and closes the connection instead of draining it.
    """
    if declared is not None and declared > limit:
        raise PayloadTooLarge("body_too_large", f"declared body of {declared} bytes exceeds {limit}")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    first: bytes = message.get("body", b"")
    if len(first) > limit:
        raise PayloadTooLarge("body_too_large", f"body exceeds {limit} bytes")
    if not message.get("more_body"):
        return first
    chunks, size = [first], len(first)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("body_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, content_type: bytes,
                  headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send, startup: Callable[[], Awaitable[None]],
                   shutdown: Callable[[], Awaitable[None]]) -> None:
    """Run `startup` before the first request and `shutdown` after the last (ASGI lifespan)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as exc:  # noqa: BLE001 - reported to the server, which refuses to start
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await shutdown()
            finally:
                await send({"type": "lifespan.shutdown.complete"})
            return
