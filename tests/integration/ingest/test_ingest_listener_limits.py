"""A real `botstream ingest` under the connections an attacker can open without credentials: idle,
slow-header, slow-body and oversized-header connections, at the same time. Ingest keeps answering
signed webhooks promptly, its memory (RSS from /proc) stays bounded, and every slow connection is
closed at its deadline (counted in /metrics)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from tests.integration.ingest.support import start_ingest, telegram, write_bots
from tests.processes import ProcessGroup, wait_until

pytestmark = pytest.mark.kafka

LIMITS = {"BOTSTREAM_INGEST_HEADER_TIMEOUT_S": "2", "BOTSTREAM_INGEST_BODY_TIMEOUT_S": "3",
          "BOTSTREAM_INGEST_KEEP_ALIVE_S": "2", "BOTSTREAM_INGEST_MAX_HEADER_BYTES": "16384",
          "BOTSTREAM_INGEST_MAX_CONNECTIONS": "120"}
MIB = 1 << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Attack:
    """Hostile connections in threads; `stop` ends them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.closed_by_server: dict[str, int] = {}
        self.lock = threading.Lock()

    def _done(self, kind: str) -> None:
        with self.lock:
            self.closed_by_server[kind] = self.closed_by_server.get(kind, 0) + 1

    def spawn(self, kind: str, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=getattr(self, kind), args=(kind,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _trickle(self, kind: str, head: bytes, then: bytes, every: float) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                sock.sendall(head)
                for byte in then:
                    if self.stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(every)
                    if _closed(sock):
                        break
        except OSError:
            pass
        self._done(kind)

    def idle(self, kind: str) -> None:
        """Connect and send nothing; wait for the server to close."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                sock.settimeout(30)
                while not self.stop.is_set() and sock.recv(4096):
                    pass
        except OSError:
            pass
        self._done(kind)

    def slow_header(self, kind: str) -> None:
        self._trickle(kind, b"POST /webhooks/telegram/tg HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 200, 0.3)

    def slow_body(self, kind: str) -> None:
        head = (b"POST /webhooks/telegram/tg HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n")
        self._trickle(kind, head, b"{" + b" " * 200, 0.3)

    def huge_header(self, kind: str) -> None:
        """A 32 MiB header, sent as fast as the server takes it."""
        chunk = b"a" * (64 * 1024)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                sock.sendall(b"POST /webhooks/telegram/tg HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                for _ in range(32 * MIB // len(chunk)):
                    if self.stop.is_set():
                        break
                    sock.sendall(chunk)
        except OSError:
            pass
        self._done(kind)


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(4096, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_slow_idle_and_oversized_connections_cannot_starve_or_bloat_ingest(
        tmp_path: Path, test_settings: Settings, kafka_bootstrap: str, processes: ProcessGroup) -> None:
    assert apply_catalog(test_settings, kafka_bootstrap).ok
    ingest = start_ingest(processes, test_settings, kafka_bootstrap, write_bots(tmp_path / "bots.toml"), **LIMITS)
    port = int(ingest.url.rsplit(":", 1)[1])
    with httpx.Client(timeout=10) as http:
        for n in range(50):  # warm up: the baseline is a process that has served traffic
            body, headers = telegram(10_000 + n, chat_id=n)
            assert http.post(ingest.url + "/webhooks/telegram/tg", content=body, headers=headers).status_code == 200
    baseline = rss_bytes(ingest.child.pid)

    attack = Attack(port)
    peak = [baseline]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], rss_bytes(ingest.child.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    attack.spawn("idle", 40)
    attack.spawn("slow_header", 20)
    attack.spawn("slow_body", 10)
    attack.spawn("huge_header", 3)
    latencies = []
    try:
        with httpx.Client(timeout=10) as http:
            for n in range(60):  # a platform's webhooks during the attack, one new connection each
                body, headers = telegram(20_000 + n, chat_id=n)
                started = time.monotonic()
                r = http.post(ingest.url + "/webhooks/telegram/tg", content=body,
                              headers={**headers, "connection": "close"})
                latencies.append(time.monotonic() - started)
                assert r.status_code == 200, (n, r.status_code, r.text)
                time.sleep(0.1)
        # every hostile connection is closed by ingest at its deadline, not by us
        wait_until(lambda: sum(attack.closed_by_server.values()) == 73, timeout=30,
                   what=f"hostile connections closed (so far {attack.closed_by_server})")
    finally:
        attack.stop.set()
        sampling.set()
        sampler.join(2)
    growth = peak[0] - baseline
    print(f"\nRSS baseline {baseline / MIB:.1f} MiB, peak {peak[0] / MIB:.1f} MiB (+{growth / MIB:.1f} MiB); "
          f"webhook latency max {max(latencies) * 1000:.0f} ms, median {sorted(latencies)[30] * 1000:.0f} ms; "
          f"closed by ingest: {attack.closed_by_server}")
    assert max(latencies) < 2.0
    assert growth < 24 * MIB, "three 32 MiB headers must not be buffered"
    closed = {reason: metric(ingest.url, f'botstream_ingest_connections_closed_total{{reason="{reason}"}}')
              for reason in ("header_timeout", "body_timeout", "header_too_large")}
    assert closed["header_timeout"] >= 60 and closed["body_timeout"] >= 10 and closed["header_too_large"] >= 3, closed
    wait_until(lambda: metric(ingest.url, "botstream_ingest_open_connections") <= 2, timeout=10,
               what="only the scrape's connection left open")
    assert ingest.child.alive()
