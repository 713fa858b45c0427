"""The HTTP boundary of the sinks: one pooled `httpx.AsyncClient` per platform, a timeout on every call.

This is the only module that talks to the platforms. It sends an `OutboundRequest` exactly as the
platform module built it (the body bytes are `request.content`) and hands back either the answer as an
`InboundResponse` for the platform's classifier, or — when no answer came — the transport failure
already classified (`botstream.sinks.outcomes.classify_transport_error`), so callers see no httpx exceptions.

A pool per platform keeps one slow API from taking every connection. Waiting for a free connection
is bounded by the same timeout: a `PoolTimeout` means the request never left, which is retryable.
Tests pass an `httpx.MockTransport`.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass

import httpx

from botstream.sinks.outcomes import Permanent, Retryable, classify_transport_error
from botstream.sinks.platforms.base import InboundResponse, OutboundRequest

__all__ = ["HttpSender", "SendResult"]

DEFAULT_MAX_CONNECTIONS = 100

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
    def __init__(self, timeout_s: float, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._timeout = httpx.Timeout(timeout_s)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, platform: str) -> httpx.AsyncClient:
        client = self._clients.get(platform)
        if client is None:
            client = self._clients[platform] = httpx.AsyncClient(
                timeout=self._timeout, limits=self._limits, transport=self._transport,
                follow_redirects=False, headers={"User-Agent": "botstream-sinks"})
        return client

    async def send(self, platform: str, request: OutboundRequest) -> SendResult:
        started = time.perf_counter()
        try:
            resp = await self.client(platform).request(request.method, request.url, headers=dict(request.headers),
                                                       content=request.content)
        except (httpx.HTTPError, OSError) as exc:
            return SendResult(None, classify_transport_error(type(exc).__name__), time.perf_counter() - started)
        return SendResult(InboundResponse(resp.status_code, dict(resp.headers), resp.content, time.time()), None,
                          time.perf_counter() - started)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
