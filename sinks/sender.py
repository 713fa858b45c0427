"""The HTTP boundary of the sinks: one pooled `httpx.AsyncClient` per platform, a timeout on every call.

This is the only module that talks to the platforms. It sends an `OutboundRequest` exactly as the
platform module built it (the body bytes are `request.content`) and hands back either the answer as an
`InboundResponse` for the platform's classifier, or — when no answer came — the transport failure
already classified (`botstream.sinks.outcomes.classify_transport_error`), so callers see no httpx exceptions.

A pool per platform keeps one slow API from taking every connection. Waiting for a free connection
is bounded by the same timeout: a `PoolTimeout` means the request never left, which is retryable.
Which pool carries the calls (`botstream.sinks.transport`: aiohttp's under the httpx API by default;
httpx's own, as it was, tuned or sharded) is the `transport` argument, from `BOTSTREAM_SINKS_HTTP_TRANSPORT`.
Tests pass an `httpx.MockTransport` as `transport`.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from botstream.core.errors import ConfigError
from botstream.sinks.outcomes import Permanent, Retryable, classify_transport_error
from botstream.sinks.platforms.base import InboundResponse, OutboundRequest
from botstream.sinks.transport import DEFAULT_TRANSPORT, TRANSPORTS, AiohttpTransport, make_client

if TYPE_CHECKING:
    from botstream.core.settings import Settings

__all__ = ["TRANSPORTS", "HttpSender", "SendResult"]

DEFAULT_MAX_CONNECTIONS = 100
URL_CACHE_SIZE = 4096

# httpcore runs `import sniffio` each time it sets up a connection lock (several times per request).
# When sniffio is not installed, every one of those is a failed import that searches all of sys.path
# (~0.2 ms each, a third of the worker's CPU per delivery in the bench). A None entry in sys.modules
# is Python's documented way to say "not importable": the same ImportError, at once.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


@dataclass(frozen=True)
class SendResult:
    """`response` when the platform answered, else `failure`; `seconds` the call took."""

    response: InboundResponse | None
    failure: Retryable | Permanent | None
    seconds: float


class HttpSender:
    """`transport`: a kind from `TRANSPORTS`, or an `httpx.AsyncBaseTransport` to use as is (tests)."""

    HEADERS = {"User-Agent": "botstream-sinks"}

    def __init__(self, timeout_s: float, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 transport: str | httpx.AsyncBaseTransport = DEFAULT_TRANSPORT) -> None:
        if isinstance(transport, str) and transport not in TRANSPORTS:
            raise ValueError(f"unknown HTTP transport {transport!r}: one of {', '.join(TRANSPORTS)}")
        self.transport = transport if isinstance(transport, str) else type(transport).__name__
        self._kind = transport if isinstance(transport, str) else "httpx"
        self._given = None if isinstance(transport, str) else transport
        self._timeout = httpx.Timeout(timeout_s)
        self._max_connections = max_connections
        self._clients: dict[str, httpx.AsyncClient] = {}
        # The aiohttp pool is ours: requests go to it through httpx's transport interface directly
        # (an `httpx.Request` in, an `httpx.Response` out), without `AsyncClient`'s per-call merging of
        # defaults, auth and redirect handling, cookies and event hooks, none of which a platform call
        # uses (~80 µs a call, an eighth of a delivery's CPU in the sinks bench).
        self._direct = AiohttpTransport(max_connections=max_connections) \
            if self._kind == "aiohttp" and self._given is None else None
        self._extensions = {"timeout": self._timeout.as_dict()}
        # Parsed once: a bot's URLs repeat (Telegram: one per method), and httpx parses a str URL anew
        # on every request (~15 µs).
        self._urls: dict[str, httpx.URL] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpSender:
        """The sender a sinks worker runs: `send_timeout_s`, `sinks_http_transport`, and connections
        enough for every chat the worker may be sending to at once (`chat_concurrency`, plus the
        retry lane's sends)."""
        if settings.sinks_http_transport not in TRANSPORTS:
            raise ConfigError(f"BOTSTREAM_SINKS_HTTP_TRANSPORT: {settings.sinks_http_transport!r} is not one of "
                              f"{', '.join(TRANSPORTS)}")
        return cls(settings.send_timeout_s, transport=settings.sinks_http_transport,
                   max_connections=max(DEFAULT_MAX_CONNECTIONS, 2 * settings.chat_concurrency))

    def client(self, platform: str) -> httpx.AsyncClient:
        client = self._clients.get(platform)
        if client is None:
            client = self._clients[platform] = make_client(
                self._kind, timeout=self._timeout, max_connections=self._max_connections, headers=self.HEADERS,
                transport=self._given)
        return client

    async def send(self, platform: str, request: OutboundRequest) -> SendResult:
        started = time.perf_counter()
        try:
            url = self._urls.get(request.url)
            if url is None:
                if len(self._urls) >= URL_CACHE_SIZE:
                    self._urls.clear()
                url = self._urls[request.url] = httpx.URL(request.url)
            if self._direct is not None:
                resp = await self._direct.handle_async_request(httpx.Request(
                    request.method, url, headers={**self.HEADERS, **request.headers}, content=request.content,
                    extensions=self._extensions))
                await resp.aread()
            else:
                resp = await self.client(platform).request(request.method, url, headers=request.headers,
                                                           content=request.content)
        except (httpx.HTTPError, OSError) as exc:
            return SendResult(None, classify_transport_error(type(exc).__name__), time.perf_counter() - started)
        return SendResult(InboundResponse(resp.status_code, resp.headers, resp.content, time.time()), None,
                          time.perf_counter() - started)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        if self._direct is not None:
            await self._direct.aclose()
