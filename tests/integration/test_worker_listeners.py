"""The workers' web servers, as real processes: they listen on BOTSTREAM_WEB_HOST (127.0.0.1 by default)
and nowhere else, answer /metrics, and do not serve Faust's table and router views (a chat's state
would be one GET away) unless BOTSTREAM_WEB_TABLE_VIEWS asks for them."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import free_port
from tests.pipeline import write_bots_file
from tests.processes import Child, ProcessGroup, wait_until

pytestmark = pytest.mark.kafka

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def listening_addresses(port: int) -> set[str]:
    """Every local address a socket LISTENs on `port` with (IPv4 and IPv6), from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] != LISTEN or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def other_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def status(port: int, path: str) -> int:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code


def test_workers_listen_on_loopback_only_and_serve_no_table_or_router_views(
        test_settings: Settings, kafka_bootstrap: str, tmp_path: Path, processes: ProcessGroup) -> None:
    report = apply_catalog(test_settings, kafka_bootstrap)
    assert report.ok, report.errors
    bots = write_bots_file(tmp_path / "bots.toml")
    ports = {"streams": free_port(), "sinks": free_port(), "sinks-views": free_port()}

    def start(name: str, command: str, **extra: str) -> Child:
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "BOTSTREAM_TOPIC_PREFIX": test_settings.topic_prefix,
               "BOTSTREAM_PARTITIONS": str(test_settings.partitions), "BOTSTREAM_BOTS_FILE": str(bots),
               "BOTSTREAM_DATA_DIR": str(tmp_path / f"data-{name}"),
               f"BOTSTREAM_{command.upper()}_WEB_PORT": str(ports[name]),
               "WEB_BIND": "0.0.0.0",  # Faust's own variable: it must not widen what the settings say
               **extra}
        return processes.start(name, ["-m", "botstream", command], env=env)

    children = {"streams": start("streams", "streams"), "sinks": start("sinks", "sinks"),
                "sinks-views": start("sinks-views", "sinks", BOTSTREAM_WEB_TABLE_VIEWS="true")}

    def metrics_answer(name: str) -> bool:
        child = children[name]
        assert child.alive(), f"{name} exited:\n{child.output()[-3000:]}"
        try:
            return status(ports[name], "/metrics") == 200
        except httpx.TransportError:
            return False

    for name in children:
        wait_until(lambda n=name: metrics_answer(n), timeout=120, interval=0.5, what=f"{name} /metrics")

    for name in ("streams", "sinks"):
        port = ports[name]
        assert listening_addresses(port) == {"127.0.0.1"}, (name, listening_addresses(port))
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert f"botstream_{name}_owned_partitions" in text
        for path in ("/table/", "/table/conversations/telegram:echo:42/", "/table/ledger/some-reply/",
                     "/router/", "/router/conversations/get/?key=telegram:echo:42",
                     "/stats/", "/graph/", "/performance/"):
            assert status(port, path) == 404, (name, path)
        address = other_address()
        if address is not None:  # reachable from outside the machine? it must not even accept
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass

    # asked for, the views are there (so the 404s above are the setting's doing, not a wrong path)
    assert status(ports["sinks-views"], "/table/") == 200
    assert status(ports["sinks-views"], "/router/") == 200
    assert listening_addresses(ports["sinks-views"]) == {"127.0.0.1"}
