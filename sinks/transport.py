"""The sinks' HTTP transports, all behind the httpx API: which pool carries a platform call.

Callers see one `httpx.AsyncClient` per platform (`make_client`) whatever the kind: `httpx.Request` in,
`httpx.Response` out, httpx timeouts and exceptions, so `botstream.sinks.outcomes.classify_transport_error`
classifies every failure by the httpx exception name. What differs is the connection pool under it:

- `httpx`        httpx's own pool as the sinks always had it (httpcore, `max_connections` connections).
- `httpx-tuned`  httpcore again, set up for a hot path: limits sized to the concurrency, HTTP/1.1 only,
                 long keep-alive, no retries, no environment (proxies, netrc) lookups, no redirects.
                 Its cost still grows with the pool: each time a request comes or goes, httpcore's
                 `_assign_requests_to_connections` polls every idle connection's socket and, for each
                 idle one, counts the idle ones again (httpx issue 3215, httpcore PR 1035).
- `httpx-sharded` the tuned pool cut into shards of `SHARD_CONNECTIONS` connections, a request going to
                 the least busy shard (`ShardedTransport`): httpcore's per-request scans stay short.
- `aiohttp`      `AiohttpTransport`: an `httpx.AsyncBaseTransport` that performs the request through
                 one `aiohttp.ClientSession` per origin (scheme, host, port): aiohttp's `TCPConnector`,
                 a connection limit, HTTP/1.1 keep-alive. The default: it is the cheapest per request
                 (the sinks bench, `python -m bench.sinks.bench_sinks --only d`).

The kind is a setting (`BOTSTREAM_SINKS_HTTP_TRANSPORT`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx
from yarl import URL

__all__ = ["DEFAULT_TRANSPORT", "TRANSPORTS", "AiohttpTransport", "ShardedTransport", "make_client"]

TRANSPORTS = ("aiohttp", "httpx-sharded", "httpx-tuned", "httpx")
DEFAULT_TRANSPORT = "aiohttp"
KEEPALIVE_S = 30.0
SHARD_CONNECTIONS = 4


def make_client(kind: str, *, timeout: httpx.Timeout, max_connections: int, headers: Mapping[str, str],
                transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A client for one platform. `transport` (tests: an `httpx.MockTransport`) overrides `kind`'s pool."""
    if kind not in TRANSPORTS:
        raise ValueError(f"unknown HTTP transport {kind!r}: one of {', '.join(TRANSPORTS)}")
    if transport is not None or kind == "httpx":
        # What the sinks always had: httpx's defaults but for the pool size and no redirects.
        return httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False, headers=headers,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections))
    if kind == "httpx-tuned":
        transport = _tuned_pool(max_connections)
    elif kind == "httpx-sharded":
        transport = ShardedTransport(max_connections=max_connections)
    else:
        transport = AiohttpTransport(max_connections=max_connections)
    return CookielessClient(timeout=timeout, transport=transport, follow_redirects=False, trust_env=False,
                            headers=httpx.Headers(headers))


class _NoCookies(httpx.Cookies):
    """Always empty: what a platform's answer sets is not kept (`extract_cookies` does nothing)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        return None


class CookielessClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies.

    The platform APIs authenticate each call by its token; a cookie one sets (a CDN's bot-management
    cookie) is not needed on the next call. httpx cannot switch its jar off, and filling it costs
    ~50 µs per answer (a `urllib.request.Request`, an `email.message.Message` and a header dict built
    to look for Set-Cookie), a sixth of the sender's CPU per call. The client reads its jar through
    the public `cookies` property, which this class answers with an always-empty one.
    """

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None


def _tuned_pool(connections: int) -> httpx.AsyncHTTPTransport:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=KEEPALIVE_S)
    return httpx.AsyncHTTPTransport(limits=limits, http1=True, http2=False, retries=0, trust_env=False)


class ShardedTransport(httpx.AsyncBaseTransport):
    """Tuned httpx pools of `shard_connections` connections each, `max_connections` in all.

    A request goes to the first shard, from a rotating start, with a free connection (else to the
    least busy one, where it waits for the httpx `pool` timeout like in one pool). The answer's body is
    read before it is returned (platform answers are small), so a shard's count of requests in flight
    is exact: its connection is back in its pool when the count drops.
    """

    def __init__(self, *, max_connections: int = 100, shard_connections: int = SHARD_CONNECTIONS) -> None:
        count = max(1, -(-max_connections // shard_connections))
        self._per_shard = shard_connections
        self._shards = [_tuned_pool(shard_connections) for _ in range(count)]
        self._busy = [0] * count
        self._next = 0

    def _pick(self) -> int:
        busy, count = self._busy, len(self._busy)
        start = self._next
        for step in range(count):
            index = (start + step) % count
            if busy[index] < self._per_shard:
                self._next = (index + 1) % count
                return index
        return min(range(count), key=busy.__getitem__)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._pick()
        self._busy[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
            try:  # raw: the client decodes Content-Encoding once, from these same headers
                content = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
        finally:
            self._busy[index] -= 1
        return httpx.Response(response.status_code, headers=response.headers.raw, stream=httpx.ByteStream(content),
                              request=request, extensions={k: v for k, v in response.extensions.items()
                                                           if k in ("http_version", "reason_phrase")})

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests carried by aiohttp: one `ClientSession` (its own `TCPConnector`) per origin.

    - Pool: at most `max_connections` requests in flight per origin, each on its own keep-alive
      connection. Waiting for a place is bounded by the request's httpx `pool` timeout and ends in
      `httpx.PoolTimeout` (the request never left), as with httpx's pool; the connector never waits
      itself, since no more requests than it has connections are let through to it.
    - Timeouts: httpx's `connect` bounds the TCP/TLS set-up (-> `httpx.ConnectTimeout`), `read` each
      wait for bytes of the answer (-> `httpx.ReadTimeout`). aiohttp has no write timeout; platform
      calls are small bodies written in one go.
    - Body: read whole before the answer is returned (platform answers are small JSON), handed to
      httpx undecoded (aiohttp's decompression is off) so httpx decodes Content-Encoding as always.
    - The request goes out with exactly httpx's headers (Host, Content-Length, User-Agent ...);
      aiohttp adds none of its own. No redirects, no cookies kept, no proxies from the environment.
    - Errors: aiohttp's exceptions become the httpx exception for the same failure (`_to_httpx`).
    - TLS: httpx's default context (certifi), so both transports trust the same certificates.

    Sessions are made on first use, inside the running loop, and closed by `aclose`.
    """

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = KEEPALIVE_S) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._pools: dict[tuple[str, bytes], _Pool] = {}
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}
        self._ssl: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        pool = self._pools.get((url.scheme, url.netloc))
        if pool is None:
            pool = self._pools[(url.scheme, url.netloc)] = self._new_pool(url.scheme == "https")
        timeouts = request.extensions.get("timeout") or {}
        slots = pool.slots
        if slots.locked():  # only a wait is timed: a free place costs no timer
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection became free in time", request=request) from None
        else:
            await slots.acquire()
        try:
            try:
                body = request.content  # httpx read bytes content when it built the request
            except httpx.RequestNotRead:
                body = await request.aread()  # a streamed body: sent whole (there is no chunked upload here)
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
            skip = _SKIP_CONTENT_TYPE if body and "content-type" not in request.headers else None
            async with pool.session.request(
                    request.method, URL(str(url), encoded=True), data=body or None, headers=headers,
                    skip_auto_headers=skip, timeout=self._timeout(timeouts.get("connect"), timeouts.get("read")),
                    allow_redirects=False) as resp:
                content = await resp.read()
                status, raw_headers, reason = resp.status, resp.raw_headers, resp.reason
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _to_httpx(exc, request) from exc
        finally:
            slots.release()
        return httpx.Response(status, headers=raw_headers, stream=httpx.ByteStream(content), request=request,
                              extensions={"http_version": b"HTTP/1.1",
                                          "reason_phrase": (reason or "").encode("latin-1", "replace")})

    def _new_pool(self, tls: bool) -> _Pool:
        if tls and self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections,
                                         keepalive_timeout=self._keepalive_s, ttl_dns_cache=300,
                                         ssl=self._ssl if tls else True)
        session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None), raise_for_status=False, requote_redirect_url=False)
        return _Pool(session, asyncio.Semaphore(self._max_connections))

    def _timeout(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        """One `aiohttp.ClientTimeout` per distinct httpx timeout (in practice one), not one per request."""
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            timeout = self._timeouts[(connect, read)] = aiohttp.ClientTimeout(
                total=None, connect=connect, sock_connect=connect, sock_read=read)
        return timeout

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.session.close()


class _Pool:
    __slots__ = ("session", "slots")

    def __init__(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore) -> None:
        self.session = session
        self.slots = slots


_SKIP_CONTENT_TYPE = ("Content-Type",)  # httpx sends a body without one; aiohttp would add octet-stream


def _to_httpx(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception httpx's own pool raises for the same failure (most specific class first)."""
    message = str(exc) or type(exc).__name__
    cls: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls = httpx.ConnectTimeout  # no TCP/TLS connection within `connect`: never sent
    elif isinstance(exc, TimeoutError):  # aiohttp.SocketTimeoutError / ServerTimeoutError included
        cls = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        cls = httpx.ConnectError  # refused, unreachable, DNS, TLS handshake: never sent
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        cls = httpx.RemoteProtocolError  # closed before a whole answer, or an answer that is not HTTP
    elif isinstance(exc, aiohttp.InvalidURL):
        cls = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientConnectionResetError):
        cls = httpx.WriteError  # the connection was closing while the request was written
    else:  # ClientOSError (a reset while waiting for the answer), other connection errors
        cls = httpx.ReadError
    return cls(message, request=request)
