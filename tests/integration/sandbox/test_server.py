"""Entry points: the thread helper, `python -m botstream.sandbox`, and the reset fallback on a plain uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from botstream.core.processes import stop_process
from botstream.core.settings import Settings
from botstream.ops.embedded_kafka import free_port
from botstream.sandbox import SandboxConfig, build_app, main, run_sandbox_in_thread
from botstream.sandbox.auth import client_token
from tests.processes import wait_until

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def sandbox_process(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`python -m botstream.sandbox ARGS` with its stderr piped, once it answers; stopped on exit."""
    port = args[args.index("--port") + 1]
    proc = subprocess.Popen([sys.executable, "-m", "botstream.sandbox", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, "the sandbox exited during start-up"
        try:
            httpx.get(f"{base}/_sandbox/healthz")
            return True
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=15, interval=0.05, what="the sandbox to answer")
        yield proc, base
    finally:
        stop_process(proc)


def test_run_sandbox_in_thread() -> None:
    base_url, stop = run_sandbox_in_thread(SandboxConfig())
    try:
        assert httpx.get(f"{base_url}/_sandbox/healthz").json() == {"ok": True}
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/_sandbox/healthz")


def test_python_dash_m_sandbox_with_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.toml"
    config.write_text('[faults]\nforbidden_chats = ["42"]\n')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BOTSTREAM_SANDBOX_TOKEN"}
    with sandbox_process(["--port", str(port), "--config", str(config), "--no-limits"],
                         {**env, "BOTSTREAM_DATA_DIR": str(tmp_path / "data")}) as (proc, base):
        assert httpx.get(f"{base}/_sandbox/config").status_code == 401
        token_path = tmp_path / "data" / "sandbox" / f"control-{port}.token"
        token = token_path.read_text().strip()
        assert token_path.stat().st_mode & 0o777 == 0o600
        cfg = httpx.get(f"{base}/_sandbox/config", headers={"Authorization": f"Bearer {token}"}).json()
        assert cfg["faults"]["forbidden_chats"] == ["42"] and cfg["limits"]["telegram"]["enabled"] is False
        settings = Settings.from_env({"BOTSTREAM_DATA_DIR": str(tmp_path / "data")})
        assert client_token(base, settings) == token  # what SandboxClient finds on this machine
        assert httpx.post(f"{base}/bot1:x/sendMessage", json={"chat_id": 42, "text": "x"}).status_code == 403
    assert proc.stderr is not None and f"sandbox control token: {token}" in proc.stderr.read().decode()


def test_a_given_token_is_used_and_never_printed(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BOTSTREAM_DATA_DIR": str(tmp_path / "data"), "SANDBOX_TEST_TOKEN": "chosen-token-123",
           "BOTSTREAM_SANDBOX_TOKEN": "env:SANDBOX_TEST_TOKEN"}
    with sandbox_process(["--port", str(port)], env) as (proc, base):
        assert httpx.get(f"{base}/_sandbox/config", headers={"X-Sandbox-Token": "chosen-token-123"}).status_code == 200
        assert httpx.get(f"{base}/_sandbox/config").status_code == 401
        assert not (tmp_path / "data" / "sandbox").exists()
    assert proc.stderr is not None and "chosen-token-123" not in proc.stderr.read().decode()


def test_main_rejects_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"faults": {"nope": 1}}')
    assert main(["--config", str(bad)]) == 4  # ExitCode.SETTINGS: 2 is for usage errors only
    assert "nope" in capsys.readouterr().err


def test_reset_fallback_under_a_server_without_our_protocol() -> None:
    """Another ASGI server cannot give us the transport; the client must still see a broken
    connection, never a well-formed answer."""
    app = build_app(SandboxConfig().merged({"faults": {"reset_ratio": 1.0}}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http="httptools", lifespan="off", log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"http://127.0.0.1:{port}/bot1:x/sendMessage", json={"chat_id": 1, "text": "x"})
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
