"""The ingest listener's limits (botstream.ingest.listener) on a real uvicorn server in a thread, with
small limits so each case takes a fraction of a second: slow and idle connections are closed at their
deadline, an oversized head is refused as it arrives, and the connection limit evicts idle
connections instead of locking out a new request."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from botstream.ingest.listener import ListenerLimits, listener_config

LIMITS = ListenerLimits(header_timeout_s=0.4, body_timeout_s=0.6, max_header_bytes=2048, max_connections=6)
KEEP_ALIVE_S = 0.5
OK_REQUEST = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"


class App:
    """Echoes the body's length; `/block` waits until released (a request in progress)."""

    def __init__(self) -> None:
        self.disconnects = 0
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/block":
            await asyncio.to_thread(self.release.wait, 10)
        answer = str(len(body)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def server() -> Iterator[tuple[int, App]]:
    app = App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = listener_config(uvicorn.Config(app, http="httptools", loop="uvloop", lifespan="off",
                                            log_level="critical", timeout_keep_alive=KEEP_ALIVE_S), LIMITS)  # type: ignore[arg-type]
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield port, app
    app.release.set()
    srv.should_exit = True
    thread.join(5)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def read_all(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, float]:
    """Everything until the server closes, and how long that took."""
    sock.settimeout(timeout)
    started, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data, time.monotonic() - started


def request_ok(port: int) -> bytes:
    with connect(port) as sock:
        sock.sendall(OK_REQUEST)
        sock.settimeout(5)
        return sock.recv(65536)


def test_a_normal_request_is_served(server: tuple[int, App]) -> None:
    assert request_ok(server[0]).startswith(b"HTTP/1.1 200")


def test_an_idle_new_connection_is_closed_at_the_header_deadline(server: tuple[int, App]) -> None:
    with connect(server[0]) as sock:
        data, waited = read_all(sock)
    assert data.startswith(b"HTTP/1.1 408") and b"header_timeout" in data
    assert 0.3 < waited < 2.0


def test_slow_headers_are_cut_at_the_deadline_counted_from_the_first_byte(server: tuple[int, App]) -> None:
    with connect(server[0]) as sock:
        started = time.monotonic()
        try:
            for byte in b"POST /x HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 50:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass
        data, _ = read_all(sock)
    assert data.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 2.0


def test_a_slow_body_is_cut_and_the_app_sees_a_disconnect(server: tuple[int, App]) -> None:
    port, app = server
    with connect(port) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        try:
            for _ in range(40):
                sock.sendall(b"x")
                time.sleep(0.05)
        except OSError:
            pass
        data, _ = read_all(sock)
    assert data.startswith(b"HTTP/1.1 408") and b"body_timeout" in data
    assert time.monotonic() - started < 2.0
    deadline = time.monotonic() + 2
    while app.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.disconnects == 1


def test_keep_alive_closes_an_idle_connection_after_a_response(server: tuple[int, App]) -> None:
    with connect(server[0]) as sock:
        sock.sendall(OK_REQUEST)
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        data, waited = read_all(sock)
    assert data == b"" and 0.3 < waited < 2.0


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_head_is_refused_before_it_is_all_sent(server: tuple[int, App], chunked: bool) -> None:
    with connect(server[0]) as sock:
        head = b"POST /x HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 100_000
        sent = 0
        try:
            if chunked:
                for start in range(0, len(head), 512):
                    sock.sendall(head[start:start + 512])
                    sent += 512
                    time.sleep(0.002)
            else:
                sock.sendall(head)
                sent = len(head)
        except OSError:
            pass
        data, _ = read_all(sock)
    assert data.startswith(b"HTTP/1.1 431") and b"header_too_large" in data
    if chunked:
        assert sent < 20_000  # refused near the 2 KiB cap, not after the 100 KB


def test_an_oversized_head_that_completes_in_one_read_is_refused_too(server: tuple[int, App]) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(30))  # ~3.3 KB, one packet
    with connect(server[0]) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\n" + headers + b"Content-Length: 2\r\n\r\nhi")
        data, _ = read_all(sock)
    assert data.startswith(b"HTTP/1.1 431")


def test_at_the_connection_limit_idle_connections_make_room(server: tuple[int, App]) -> None:
    port, _ = server
    idle = [connect(port) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.05)
        assert request_ok(port).startswith(b"HTTP/1.1 200")  # the oldest idle one was closed for it
        closed = 0
        for sock in idle:
            sock.settimeout(0.2)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except TimeoutError:
                pass
            except OSError:
                closed += 1
        assert closed >= 1
    finally:
        for sock in idle:
            sock.close()


def test_when_every_connection_is_in_a_request_a_new_one_gets_503(server: tuple[int, App]) -> None:
    port, app = server
    busy = [connect(port) for _ in range(LIMITS.max_connections)]
    try:
        for sock in busy:
            sock.sendall(b"POST /block HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.1)
        with connect(port) as extra:
            data, _ = read_all(extra)
        assert data.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in data
        app.release.set()
        for sock in busy:
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the requests in progress finished
    finally:
        for sock in busy:
            sock.close()


def test_malformed_requests_are_400_without_a_log_line(server: tuple[int, App],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with connect(server[0]) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data, _ = read_all(sock)
    assert data.startswith(b"HTTP/1.1 400")
    assert not [r for r in caplog.records if "Invalid HTTP request" in r.getMessage()]
