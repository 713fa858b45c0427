"""The sinks' HTTP transports against a real HTTP/1.1 server on a free local port.

Every transport kind must answer like httpx's own pool: the same `httpx.Response` for an answer, the
same httpx exception class for each failure (what `classify_transport_error` classifies), connections
kept alive and shared by concurrent calls up to the pool's size.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey

from botstream.core.errors import ConfigError
from botstream.core.settings import Settings
from botstream.sinks.outcomes import Retryable
from botstream.sinks.platforms.base import OutboundRequest
from botstream.sinks.sender import HttpSender
from botstream.sinks.transport import (
    DEFAULT_TRANSPORT,
    TRANSPORTS,
    AiohttpTransport,
    CookielessClient,
    _to_httpx,
    make_client,
)

pytestmark = pytest.mark.timeout(60)
CONN_KEY = ConnectionKey("api.example", 443, True, True, None, None, None)


@dataclass
class Seen:
    """What the server saw: one entry per request, and the connections it accepted."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class Server:
    """A small HTTP/1.1 keep-alive server whose paths misbehave on purpose.

    /ok            200, JSON echo of the request (method, path, headers, body)
    /status/N      N with a Retry-After header and a JSON error body
    /slow/S        answers after S seconds
    /gzip          a gzip-encoded JSON body
    /cookie        sets a cookie
    /reset         reads the request, then resets the connection (RST)
    /close         reads the request, then closes the connection without an answer
    /partial       headers announcing 100 bytes, 10 of them, then closes
    /garbage       an answer that is not HTTP
    """

    def __init__(self, idle_close_s: float | None = None) -> None:
        self.idle_close_s = idle_close_s  # close a kept-alive connection idle this long (None: never)
        self.seen = Seen()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Server:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):  # Python 3.11's Server has no close_clients()
            writer.transport.abort()
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_close_s):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
                length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                self.seen.requests.append((method, path, headers, body))
                self.seen.in_flight += 1
                self.seen.max_in_flight = max(self.seen.max_in_flight, self.seen.in_flight)
                try:
                    if not await self._answer(path, method, headers, body, writer):
                        return
                finally:
                    self.seen.in_flight -= 1
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, path: str, method: str, headers: dict[str, str], body: bytes,
                      writer: asyncio.StreamWriter) -> bool:
        """Write the answer; False when the connection is to end here."""
        if path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if path == "/close":
            return False
        if path == "/partial":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n0123456789")
            await writer.drain()
            return False
        if path == "/garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            await writer.drain()
            return False
        extra = b""
        status, reason, payload = 200, b"OK", json.dumps(
            {"method": method, "path": path, "headers": headers, "body": body.decode()}).encode()
        if path.startswith("/slow/"):
            await asyncio.sleep(float(path.rsplit("/", 1)[1]))
        elif path.startswith("/status/"):
            status, reason = int(path.rsplit("/", 1)[1]), b"Nope"
            payload, extra = b'{"ok":false,"error_code":%d}' % status, b"Retry-After: 3\r\n"
        elif path == "/gzip":
            payload, extra = gzip.compress(b'{"ok":true,"zipped":true}'), b"Content-Encoding: gzip\r\n"
        elif path == "/cookie":
            extra = b"Set-Cookie: session=abc; Path=/\r\n"
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                     % (status, reason, len(payload), extra, payload))
        await writer.drain()
        return True


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = await Server().start()
    yield srv
    await srv.stop()


@pytest.fixture(params=TRANSPORTS)
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """One client per transport kind: 4 connections, 0.5 s to wait for an answer, 2 s for the pool."""
    async with make_client(request.param, timeout=httpx.Timeout(1.0, read=0.5, pool=2.0), max_connections=4,
                           headers={"User-Agent": "botstream-test"}) as c:
        yield c


def refused_url() -> str:
    with socket.socket() as s:  # a port just freed: nothing listens on it
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/x"


# -- answers ---------------------------------------------------------------------------------------
async def test_an_answer_comes_back_as_httpx_builds_it(server: Server, client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{server.url}/ok", headers={"Content-Type": "application/json", "X-Reply": "r1"},
                             content=b'{"chat_id":1}')
    assert resp.status_code == 200 and resp.http_version == "HTTP/1.1" and resp.reason_phrase == "OK"
    assert resp.headers["content-type"] == "application/json"
    echo = resp.json()
    assert echo["method"] == "POST" and echo["path"] == "/ok" and echo["body"] == '{"chat_id":1}'
    sent = {k.lower(): v for k, v in echo["headers"].items()}
    # httpx's headers, and no others: nothing the pool underneath would add on its own
    assert sent["host"] == f"127.0.0.1:{server.port}"
    assert sent["user-agent"] == "botstream-test" and sent["x-reply"] == "r1"
    assert sent["content-length"] == "13" and sent["content-type"] == "application/json"
    assert set(sent) <= {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length",
                         "content-type", "x-reply"}


async def test_a_non_2xx_answer_is_an_answer_not_an_error(server: Server, client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{server.url}/status/429", content=b"{}")
    assert resp.status_code == 429 and resp.reason_phrase == "Nope"
    assert resp.headers["retry-after"] == "3" and resp.json() == {"ok": False, "error_code": 429}
    resp = await client.get(f"{server.url}/status/503")
    assert resp.status_code == 503


async def test_a_body_without_content_type_goes_without_one(server: Server, client: httpx.AsyncClient) -> None:
    echo = (await client.post(f"{server.url}/ok", content=b"raw")).json()
    assert "content-type" not in {k.lower() for k in echo["headers"]}
    echo = (await client.get(f"{server.url}/ok")).json()
    assert echo["method"] == "GET" and echo["body"] == ""


async def test_a_compressed_body_is_decoded_once(server: Server, client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{server.url}/gzip")
    assert resp.json() == {"ok": True, "zipped": True}


async def test_a_streamed_request_body_is_sent_whole(server: Server, client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    resp = await client.post(f"{server.url}/ok", content=chunks(), headers={"Content-Length": "7"})
    assert resp.json()["body"] == '{"a":1}'


async def test_no_cookie_is_kept_by_the_tuned_clients(server: Server) -> None:
    async with make_client("aiohttp", timeout=httpx.Timeout(1.0), max_connections=2, headers={}) as c:
        assert isinstance(c, CookielessClient)
        await c.get(f"{server.url}/cookie")
        echo = (await c.get(f"{server.url}/ok")).json()
        assert "cookie" not in {k.lower() for k in echo["headers"]} and len(c.cookies) == 0


# -- failures: the httpx exception httpx's own pool raises ---------------------------------------------
async def test_a_slow_answer_is_a_read_timeout(server: Server, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await client.post(f"{server.url}/slow/1", content=b"{}")


async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await client.post(refused_url(), content=b"{}")


async def test_a_reset_is_a_read_error(server: Server, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ReadError):
        await client.post(f"{server.url}/reset", content=b"{}")
    await client.get(f"{server.url}/ok")  # and on a kept-alive connection
    with pytest.raises(httpx.ReadError):
        await client.post(f"{server.url}/reset", content=b"{}")


async def test_a_close_without_an_answer_is_a_remote_protocol_error(server: Server,
                                                                    client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(f"{server.url}/close", content=b"{}")


async def test_a_cut_body_is_a_remote_protocol_error(server: Server, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(f"{server.url}/partial")


async def test_an_answer_that_is_not_http_is_a_remote_protocol_error(server: Server,
                                                                     client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(f"{server.url}/garbage")


async def test_no_free_connection_in_time_is_a_pool_timeout(server: Server) -> None:
    for kind in ("aiohttp", "httpx-tuned", "httpx"):
        async with make_client(kind, timeout=httpx.Timeout(2.0, pool=0.2), max_connections=1, headers={}) as c:
            slow = asyncio.create_task(c.get(f"{server.url}/slow/0.6"))
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await c.get(f"{server.url}/ok")
            assert (await slow).status_code == 200
            assert (await c.get(f"{server.url}/ok")).status_code == 200  # the place was given back


async def test_a_failure_does_not_poison_the_pool(server: Server, client: httpx.AsyncClient) -> None:
    for path in ("/reset", "/close", "/partial", "/garbage"):
        with pytest.raises(httpx.TransportError):
            await client.get(f"{server.url}{path}")
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"{server.url}/slow/1")
    answers = await asyncio.gather(*(client.get(f"{server.url}/ok") for _ in range(12)))
    assert [r.status_code for r in answers] == [200] * 12


# -- one pool, shared ------------------------------------------------------------------------------
async def test_concurrent_calls_share_one_keep_alive_pool(server: Server, client: httpx.AsyncClient) -> None:
    for _ in range(3):
        answers = await asyncio.gather(*(client.post(f"{server.url}/slow/0.05", content=b"{}") for _ in range(20)))
        assert [r.status_code for r in answers] == [200] * 20
    assert server.seen.max_in_flight <= 4  # the pool's size (4), never more
    assert server.seen.connections <= 4  # 60 calls, kept-alive connections reused across the rounds
    assert len(server.seen.requests) == 60


async def test_a_connection_the_server_closed_while_idle_is_not_reused(client: httpx.AsyncClient) -> None:
    server = await Server(idle_close_s=0.1).start()
    try:
        assert (await client.post(f"{server.url}/ok", content=b"{}")).status_code == 200
        await asyncio.sleep(0.4)  # the server has closed it by now
        assert (await client.post(f"{server.url}/ok", content=b"{}")).status_code == 200
        assert server.seen.connections == 2
    finally:
        await server.stop()


async def test_one_aiohttp_pool_per_origin(server: Server) -> None:
    other = await Server().start()
    try:
        transport = AiohttpTransport(max_connections=2)
        async with httpx.AsyncClient(transport=transport) as c:
            await asyncio.gather(*(c.get(f"{srv.url}/slow/0.05") for srv in (server, other) for _ in range(4)))
            assert len(transport._pools) == 2
            assert server.seen.max_in_flight <= 2 and other.seen.max_in_flight <= 2
        assert transport._pools == {}  # closed with the client
    finally:
        await other.stop()


# -- through the sender: what the rest of the sinks see -------------------------------------------------
@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_the_sender_classifies_each_failure_alike(server: Server, kind: str) -> None:
    sender = HttpSender(0.5, transport=kind, max_connections=2)

    def call(url: str) -> Awaitable[object]:
        return sender.send("telegram", OutboundRequest("POST", url, {"Content-Type": "application/json"}, {"a": 1}))

    try:
        ok = await call(f"{server.url}/status/429")
        assert ok.response is not None and ok.response.status == 429  # type: ignore[attr-defined]
        assert ok.response.headers["retry-after"] == "3"  # type: ignore[attr-defined]
        failures: dict[str, Callable[[], Awaitable[object]]] = {
            "refused": lambda: call(refused_url()),
            "slow": lambda: call(f"{server.url}/slow/1"),
            "close": lambda: call(f"{server.url}/close"),
        }
        got = {name: (await make()).failure for name, make in failures.items()}  # type: ignore[attr-defined]
        assert got["refused"] == Retryable("transport: ConnectError", None, ambiguous=False)
        assert got["slow"] == Retryable("transport: ReadTimeout", None, ambiguous=True)
        assert got["close"] == Retryable("transport: RemoteProtocolError", None, ambiguous=True)
    finally:
        await sender.aclose()


@pytest.mark.parametrize(("raised", "expected"), [
    (aiohttp.ConnectionTimeoutError("Connection timeout to host"), httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), httpx.ReadTimeout),
    (TimeoutError(), httpx.ReadTimeout),
    (aiohttp.ClientConnectorError(CONN_KEY, ConnectionRefusedError(111, "refused")), httpx.ConnectError),
    (aiohttp.ClientConnectorDNSError(CONN_KEY, OSError(-2, "Name or service not known")), httpx.ConnectError),
    (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError("Response payload is not completed"), httpx.RemoteProtocolError),
    (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), httpx.WriteError),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.ReadError),
    (aiohttp.InvalidURL("ftp://x"), httpx.UnsupportedProtocol),
])
def test_each_aiohttp_error_maps_to_the_httpx_one(raised: BaseException, expected: type[Exception]) -> None:
    """The failures a local server cannot stage (DNS, connect timeout ...), by the mapping itself."""
    mapped = _to_httpx(raised, httpx.Request("POST", "http://api.example/x"))
    assert type(mapped) is expected and mapped.request.url == "http://api.example/x"


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown HTTP transport"):
        HttpSender(1.0, transport="requests")


def test_the_setting_chooses_among_the_transports() -> None:
    spec = next(f for f in dataclasses.fields(Settings) if f.name == "sinks_http_transport")
    assert set(spec.metadata["choices"]) == set(TRANSPORTS) and spec.default == DEFAULT_TRANSPORT
    assert HttpSender.from_settings(Settings.from_env({})).transport == DEFAULT_TRANSPORT
    chosen = Settings.from_env({"BOTSTREAM_SINKS_HTTP_TRANSPORT": "httpx-tuned", "BOTSTREAM_SEND_TIMEOUT_S": "2"})
    assert HttpSender.from_settings(chosen).transport == "httpx-tuned"
    with pytest.raises(ConfigError, match="BOTSTREAM_SINKS_HTTP_TRANSPORT"):
        Settings.from_env({"BOTSTREAM_SINKS_HTTP_TRANSPORT": "urllib3"})
