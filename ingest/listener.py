"""Ingest's HTTP listener: uvicorn's httptools protocol with the limits a public endpoint needs.

uvicorn's httptools protocol (the fast one, see `botstream.ingest.server`) has a keep-alive timeout
and `limit_concurrency`, and nothing else against a client that takes its time or sends too much: a
connection that never sends a byte, or sends its headers one byte every few seconds, stays open for
ever; a header is buffered whole however large (three unfinished 32 MiB headers took ingest from 71
to 199 MB); `limit_concurrency` answers 503 to everyone once idle connections fill it. h11's
`max_incomplete_event_size` caps headers, but h11 is ~6x slower here. So this subclass adds, per
connection and measured on the event loop's clock:

- **header-read timeout** (`BOTSTREAM_INGEST_HEADER_TIMEOUT_S`): a request line and its headers must
  be complete within this time of the request's first byte (of connecting, for the first request);
  else 408 and the connection is closed;
- **body-read timeout** (`BOTSTREAM_INGEST_BODY_TIMEOUT_S`): the whole body must arrive within this
  time of the headers, however it trickles in; else 408 (if nothing was answered yet) and closed, and
  the app sees a disconnect (nothing is produced);
- **keep-alive timeout** (`BOTSTREAM_INGEST_KEEP_ALIVE_S`): uvicorn's own, between requests;
- **header size cap** (`BOTSTREAM_INGEST_MAX_HEADER_BYTES`): request line + headers, counted as they
  arrive, so no more than the cap plus one read is ever buffered; beyond, 431 and closed;
- **connection limit** (`BOTSTREAM_INGEST_MAX_CONNECTIONS`, per process): at the limit, a new
  connection closes the longest-idle one that is not in a request (waiting between requests or still
  sending its headers); when every connection is inside a request, the new one gets 503 and is closed.
  So idle and slow-header connections cannot lock out a platform's webhooks.

Each close is counted (`botstream_ingest_connections_closed_total{reason}`), never logged per event;
open connections are a gauge. None of this adds work to a normal request beyond two timer handles.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from botstream.ingest.metrics import CONNECTIONS_CLOSED, OPEN_CONNECTIONS

LIMITS_ATTRIBUTE = "botstream_listener_limits"  # where `listener_config` leaves the limits on uvicorn's Config


class ListenerLimits(NamedTuple):
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 32 * 1024
    max_connections: int = 1000


class _HeadTooLarge(Exception):
    """Raised from a parser callback; the parser turns it into an HttpParserError we recognise."""


def _response(status: bytes, reason: bytes, extra: bytes = b"") -> bytes:
    body = b'{"error":"' + reason + b'"}'
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"connection: close\r\n\r\n" + body)


HEADER_TIMEOUT = _response(b"408 Request Timeout", b"header_timeout")
BODY_TIMEOUT = _response(b"408 Request Timeout", b"body_timeout")
HEAD_TOO_LARGE = _response(b"431 Request Header Fields Too Large", b"header_too_large")
BAD_REQUEST = _response(b"400 Bad Request", b"bad_request")
AT_LIMIT = _response(b"503 Service Unavailable", b"too_many_connections", b"retry-after: 1\r\n")
_CLOSED = {reason: CONNECTIONS_CLOSED.labels(reason)
           for reason in ("header_timeout", "body_timeout", "header_too_large", "evicted", "at_limit", "bad_request")}


class IngestHttpProtocol(HttpToolsProtocol):
    """One connection. `_busy` spans a request from its headers to its response; a connection that is
    not busy is idle (between requests) or still sending headers, and may be evicted at the limit."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ListenerLimits = getattr(config, LIMITS_ATTRIBUTE, None) or ListenerLimits()
        self._timer: asyncio.TimerHandle | None = None  # the header or the body deadline
        self._reading_head = True
        self._head_bytes = 0  # bytes received since the current request began, while in its head
        self._head_size = 0  # the current head's URL and header bytes, as parsed
        self._busy = False
        self._idle_since = 0.0
        self._refusal: tuple[bytes, str] | None = None

    # -- connection --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        OPEN_CONNECTIONS.inc()
        self._idle_since = self.loop.time()
        self._arm(self.limits.header_timeout_s, self._head_timed_out)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        OPEN_CONNECTIONS.dec()
        super().connection_lost(exc)

    def _make_room(self) -> None:
        """At the limit: close the longest-idle connection not in a request, or refuse this one."""
        victim: IngestHttpProtocol | None = None
        for conn in self.connections:
            if (conn is not self and isinstance(conn, IngestHttpProtocol) and not conn._busy
                    and not conn.transport.is_closing()
                    and (victim is None or conn._idle_since < victim._idle_since)):
                victim = conn
        if victim is not None:
            victim._close("evicted")
        else:
            self._close("at_limit", AT_LIMIT)

    def _close(self, reason: str, answer: bytes | None = None) -> None:
        if self.transport.is_closing():
            return
        _CLOSED[reason].inc()
        self._disarm()
        if answer is not None:
            self.transport.write(answer)
        self.transport.close()

    # -- timers ------------------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        self._close("header_timeout", HEADER_TIMEOUT if not self._busy else None)

    def _body_timed_out(self) -> None:
        self._timer = None
        answered = self.cycle is not None and self.cycle.response_started
        self._close("body_timeout", None if answered else BODY_TIMEOUT)

    # -- bytes in ----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                answer, reason = self._refusal
                self._close(reason, answer)
            else:  # uvicorn logs a warning for every one of these; a count is enough
                self._close("bad_request", BAD_REQUEST)
            return
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._close("header_too_large", HEAD_TOO_LARGE)

    # -- parser callbacks --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_size = 0
        if self._timer is None:  # the first request's deadline runs from the connection
            self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_head(len(name) + len(value) + 4)

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._refusal = (HEAD_TOO_LARGE, "header_too_large")
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._busy = True
        self._arm(self.limits.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._busy = False
        self._idle_since = self.loop.time()
        super().on_response_complete()


def listener_config(config: Config, limits: ListenerLimits) -> Config:
    """`config` serving with `IngestHttpProtocol` under `limits` (kept on the Config, which uvicorn
    hands to every worker process)."""
    config.http = IngestHttpProtocol
    setattr(config, LIMITS_ATTRIBUTE, limits)
    return config
