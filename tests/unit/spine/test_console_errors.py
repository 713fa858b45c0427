"""Errors on the console: one line saying what is wrong, a distinct exit code per cause, a child's
cause on `up`'s console, and `demo` refusing bad arguments and saying why requests fail."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from botstream.core.bots import parse_bots
from botstream.core.errors import BrokerUnavailableError, PortTakenError
from botstream.core.exitcodes import ExitCode, exit_code_for, markdown_table
from botstream.core.settings import Settings
from botstream.ops import preflight
from botstream.ops.cli import main
from botstream.ops.supervisor import ChildSpec, Supervisor, SupervisorError, describe_exit, last_error

BOTS = textwrap.dedent("""
    [[bots]]
    id = "gen"
    platform = "generic"
    secret = "demo-secret-value"
    api_base_url = "http://127.0.0.1:8090"
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def listening() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


@pytest.fixture()
def service_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("BOTSTREAM_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"):
            monkeypatch.delenv(name)
    bots = tmp_path / "bots.toml"
    bots.write_text(BOTS)
    monkeypatch.setenv("BOTSTREAM_BOTS_FILE", str(bots))
    monkeypatch.setenv("BOTSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{_free_port()}")  # nothing listens there
    for name in ("STREAMS_WEB_PORT", "SINKS_WEB_PORT", "INGEST_PORT", "SANDBOX_PORT"):
        monkeypatch.setenv(f"BOTSTREAM_{name}", str(_free_port()))
    return bots


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("botstream: warning:")]
    assert len(err) == 1, err
    assert err[0].startswith("botstream: error: ")
    return err[0][len("botstream: error: "):]


@pytest.mark.parametrize("command", ["streams", "sinks", "ingest"])
def test_a_service_without_a_broker_says_so_and_exits_8(command: str, service_env: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main([command]) == ExitCode.NO_BROKER
    line = _one_error_line(capsys)
    assert line.startswith("no Kafka broker at 127.0.0.1:") and line.endswith("connection refused")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("command", "variable"), [("streams", "BOTSTREAM_STREAMS_WEB_PORT"),
                                                    ("sinks", "BOTSTREAM_SINKS_WEB_PORT"),
                                                    ("ingest", "BOTSTREAM_INGEST_PORT"),
                                                    ("sandbox", "BOTSTREAM_SANDBOX_PORT")])
def test_a_service_on_a_taken_port_says_so_and_exits_7(command: str, variable: str, service_env: Path, listening: int,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, str(listening))
    assert main([command]) == ExitCode.PORT_TAKEN
    assert _one_error_line(capsys).endswith(f"port {listening} on 127.0.0.1 is already in use "
                                            f"(set {variable} or stop what uses it)")


def test_a_bad_bots_file_is_exit_5_and_names_the_line(service_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service_env.write_text(BOTS.replace('platform = "generic"', 'platform = "icq"'))
    assert main(["streams"]) == ExitCode.BOTS_FILE
    assert _one_error_line(capsys).startswith(f"{service_env}:4: bot 'gen', key 'platform': unknown platform 'icq'")
    service_env.unlink()
    assert main(["sinks"]) == ExitCode.BOTS_FILE
    assert "cannot read bots file" in _one_error_line(capsys)


def test_a_bad_setting_is_exit_4(service_env: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BOTSTREAM_PARTITIONS", "many")
    assert main(["streams"]) == ExitCode.SETTINGS
    assert _one_error_line(capsys) == "BOTSTREAM_PARTITIONS: cannot read 'many' as int"


def test_exit_codes_are_distinct_and_usage_is_argparse_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert exit_code_for(PortTakenError("x")) == ExitCode.PORT_TAKEN
    assert exit_code_for(BrokerUnavailableError("x")) == ExitCode.NO_BROKER
    assert exit_code_for(ValueError("x")) == ExitCode.FAILED
    with pytest.raises(SystemExit) as caught:
        main(["no-such-command"])
    assert caught.value.code == ExitCode.USAGE
    assert "| 6 | a bot's handler module cannot be imported" in markdown_table()


def test_preflight_checks_directly(listening: int) -> None:
    with pytest.raises(PortTakenError, match=f"port {listening} on 127.0.0.1 is already in use"):
        preflight.port("127.0.0.1", listening, "ingest")
    preflight.port("127.0.0.1", _free_port(), "ingest")
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{_free_port()},localhost:{_free_port()}")
    with pytest.raises(BrokerUnavailableError, match="no Kafka broker at .*: connection refused$"):
        preflight.broker(settings)
    with pytest.raises(BrokerUnavailableError, match="set KAFKA_BOOTSTRAP_SERVERS or start one"):
        preflight.broker(Settings(data_dir=Path("/nonexistent/botstream")))


# --- up's console: the cause of a child's exit ------------------------------------------------------

def test_last_error_prefers_the_cli_line_then_json_errors_then_a_traceback(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("old run\nbotstream: error: from an earlier run\n")
    offset = log.stat().st_size
    event = {"ts": "2026-01-01T00:00:00.000Z", "level": "error", "msg": "Error: boom", "exc_type": "KafkaException",
             "exc_message": "KafkaError{code=_TRANSPORT}", "exc_traceback": ["Traceback ...", "KafkaException: ..."]}
    with log.open("a") as f:
        f.write(json.dumps({"level": "info", "msg": "starting"}) + "\n" + json.dumps(event) + "\n")
    assert last_error(log, offset) == "Error: boom (KafkaException: KafkaError{code=_TRANSPORT})"
    with log.open("a") as f:
        f.write("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                "botstream.core.errors.PortTakenError: port 8080 taken\n")
    assert last_error(log, offset) == "botstream.core.errors.PortTakenError: port 8080 taken"
    with log.open("a") as f:
        f.write("botstream: error: no Kafka broker at 127.0.0.1:9092: connection refused\n{\"level\": \"info\"}\n")
    assert last_error(log, offset) == "no Kafka broker at 127.0.0.1:9092: connection refused"
    assert last_error(tmp_path / "missing.log") is None
    assert describe_exit(6) == "exit code 6 (handler)" and describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(77) == "exit code 77"


def test_a_child_that_fails_at_start_shows_its_cause_and_exit_code(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", {}, on_event=lambda _e: None)
    script = ("import sys; print('Traceback (most recent call last):', file=sys.stderr); "
              "print('botstream: error: no Kafka broker at 127.0.0.1:1: connection refused', file=sys.stderr); "
              "sys.exit(8)")
    with pytest.raises(SupervisorError) as caught:
        sup.start(ChildSpec("streams", ["-c", script], ready=lambda: False, ready_timeout=20))
    sup.stop_all()
    message = str(caught.value)
    assert message.startswith("streams failed to start, exit code 8 (no broker): no Kafka broker at 127.0.0.1:1: "
                              "connection refused (log: ")
    assert "\n" not in message and caught.value.exit_code == ExitCode.NO_BROKER


def test_a_restart_says_why_the_child_died(tmp_path: Path) -> None:
    events: list[str] = []
    sup = Supervisor(tmp_path / "logs", {}, max_restarts=1, on_event=events.append)
    sup.start(ChildSpec("sinks", ["-c", "raise RuntimeError('lost the ledger')"]))
    sup.watch()
    assert sup.failed.wait(20)
    sup.stop_all()
    assert events[0].startswith("sinks exited, exit code 1 (failed): RuntimeError: lost the ledger; restarting (1/1)")
    assert "last exit code 1 (failed): RuntimeError: lost the ledger; giving up" in events[1]


# --- demo -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value"), [("--rate", "-5"), ("--rate", "0"), ("--rate", "nan"),
                                               ("--chats", "0"), ("--duration", "-1"), ("--redeliveries", "1")])
def test_demo_refuses_bad_arguments_at_once(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as caught:
        main(["demo", option, value])
    assert caught.value.code == ExitCode.USAGE and time.monotonic() - started < 2
    assert f"argument {option}" in capsys.readouterr().err


def test_demo_with_nothing_running_says_ingest_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "1", "--ingest", f"http://127.0.0.1:{_free_port()}"]) == ExitCode.FAILED
    line = _one_error_line(capsys)
    assert line.startswith("cannot reach ingest at http://127.0.0.1:") and "connection refused" in line


class _Refusing(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, {"ok": True})

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(401, {"detail": "bad signature"})


def test_demo_counts_why_requests_failed() -> None:
    from botstream.ops.demo import run_demo, summary_table

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        bots = parse_bots(BOTS, environ={})
        stats = asyncio.run(run_demo(bots, f"http://127.0.0.1:{server.server_address[1]}", None, rate=20, chats=2,
                                     duration=0.5, progress=lambda _l: None, settle_s=0))
    finally:
        server.shutdown()
        server.server_close()
    assert sum(stats.acked.values()) == 0 and sum(stats.errors.values()) > 0
    assert list(stats.reasons) == ["generic: HTTP 401 Unauthorized: bad signature"]
    assert "Why requests failed:" in summary_table(stats)
    assert stats.as_dict()["errors"] == dict(stats.reasons)


def test_cli_exits_cleanly_on_schema_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from botstream.schemas.errors import RegistryUnavailableError

    def fail(*_a: object) -> int:
        raise RegistryUnavailableError("schema registry at http://r unavailable: ConnectError", b"")

    from botstream.ops.commands import config

    monkeypatch.setattr(config, "cmd_show", fail)  # the parser is built inside main(), after this
    assert main(["config", "show"]) == ExitCode.REGISTRY
    assert _one_error_line(capsys).startswith("schema registry at http://r unavailable")
