"""Running the sandbox: `build_app` for any ASGI server, `serve` to block on uvicorn, and
`SandboxServer` / `run_sandbox_in_thread` for tests of other stages that need a live URL.

uvicorn runs with httptools + uvloop (the fast path: the sandbox must not be the bottleneck of a
benchmark) and with a protocol subclass whose only addition is exposing the transport to the app,
which the connection-reset fault needs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from botstream.sandbox.asgi import TRANSPORT_EXTENSION, Clock, SandboxApp, Sleep
from botstream.sandbox.auth import new_token
from botstream.sandbox.client import SandboxClient
from botstream.sandbox.config import SandboxConfig
from botstream.sandbox.engine import SandboxEngine

__all__ = [
    "SandboxHttpProtocol",
    "SandboxServer",
    "build_app",
    "run_sandbox_in_thread",
    "serve",
    "uvicorn_config",
]


class SandboxHttpProtocol(HttpToolsProtocol):
    """httptools protocol that hands the app its transport (for the reset fault)."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[dict-item]


def build_app(
    config: SandboxConfig | None = None,
    *,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    sleep: Sleep | None = None,
    control_token: str | None = None,
) -> SandboxApp:
    """A fresh sandbox ASGI app with its own state. Clocks default to `time.monotonic` (limits)
    and `time.time` (timestamps); `sleep` (latency) to `asyncio.sleep`. `control_token` guards the
    control API (`botstream.sandbox.auth`); None leaves it open, for in-process tests only."""
    return SandboxApp(
        SandboxEngine(config or SandboxConfig()),
        clock=clock or time.monotonic,
        wall_clock=wall_clock or time.time,
        sleep=sleep or asyncio.sleep,
        control_token=control_token,
    )


def uvicorn_config(
    app: SandboxApp | Callable[..., object], host: str, port: int, log_level: str = "warning"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=SandboxHttpProtocol,
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level=log_level,
        server_header=False,
        timeout_graceful_shutdown=2,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8081,
    config: SandboxConfig | None = None,
    *,
    log_level: str = "warning",
    control_token: str | None = None,
) -> None:
    """Serve the sandbox until interrupted (SIGINT/SIGTERM)."""
    app = build_app(config, control_token=control_token)
    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()


class SandboxServer:
    """A sandbox on 127.0.0.1 in a background thread, for tests::

        with SandboxServer(SandboxConfig().with_limits_disabled()) as sandbox:
            httpx.post(f"{sandbox.base_url}/bot1:x/sendMessage", json={...})
            sandbox.client.deliveries(chat="42")

    `port=0` picks a free port. `clock`/`sleep` are injected into the app (see `build_app`). The
    control API needs `control_token` (a fresh one unless given), which `client` sends.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        sleep: Sleep | None = None,
        log_level: str = "warning",
        control_token: str | None = None,
    ) -> None:
        self.control_token = control_token or new_token()
        self.app = build_app(config, clock=clock, wall_clock=wall_clock, sleep=sleep,
                             control_token=self.control_token)
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._client: SandboxClient | None = None
        self.port = 0

    @property
    def engine(self) -> SandboxEngine:
        """The live state. It belongs to the server thread: read it only while no request is in
        flight, or go through `client` (the HTTP control API) instead."""
        return self.app.engine

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("SandboxServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def client(self) -> SandboxClient:
        """A control-API client bound to this server (closed by `stop`)."""
        if self._client is None:
            self._client = SandboxClient(self.base_url, token=self.control_token)
        return self._client

    def start(self, timeout: float = 10.0) -> SandboxServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(self.app, self.host, self.port, self._log_level))
        self._server = server
        failure: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # noqa: BLE001 - surfaced to start()
                failure.append(exc)
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if failure or not self._thread.is_alive():
                raise RuntimeError(f"sandbox failed to start: {failure[0] if failure else 'thread exited'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox did not start in time")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish briefly, then force the rest."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_sandbox_in_thread(
    config: SandboxConfig | None = None, port: int = 0, **kwargs: object
) -> tuple[str, Callable[[], None]]:
    """Start a `SandboxServer`; returns its base URL and a `stop` callable."""
    server = SandboxServer(config, port=port, **kwargs)  # type: ignore[arg-type]
    server.start()
    return server.base_url, server.stop
