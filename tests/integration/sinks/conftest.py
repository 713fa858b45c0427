"""A sinks rig: the catalog applied on the session broker, a real sandbox in a thread, and sink workers
started as real processes (`python -m botstream sinks`) with their settings in the environment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import free_port
from botstream.sandbox import SandboxConfig, SandboxServer
from botstream.schemas.headers import CORRELATION_ID
from tests.integration.sinks.support import CODEC, scrape, write_sinks_bots
from tests.pipeline import TopicReader, producer
from tests.processes import Child, ProcessGroup, wait_until


@dataclass
class SinkRig:
    settings: Settings
    bootstrap: str
    tmp: Path
    processes: ProcessGroup
    sandbox: SandboxServer
    bots_file: Path
    retry_delays: str = "0.5,1,2"
    readers: list[TopicReader] = field(default_factory=list)
    web_ports: dict[str, int] = field(default_factory=dict)
    _producer: Producer | None = None

    def env(self, name: str, **extra: str) -> dict[str, str]:
        s = self.settings
        port = self.web_ports.setdefault(name, free_port())
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BOTSTREAM_TOPIC_PREFIX": s.topic_prefix,
                "BOTSTREAM_PARTITIONS": str(s.partitions), "BOTSTREAM_BOTS_FILE": str(self.bots_file),
                "BOTSTREAM_DATA_DIR": str(self.tmp / f"data-{name}"), "BOTSTREAM_LOG_LEVEL": "INFO",
                "BOTSTREAM_SINKS_WEB_PORT": str(port), "BOTSTREAM_RETRY_DELAYS_S": self.retry_delays,
                # faust reads this itself: a killed worker's partitions move after 10 s, not 60 s
                "BROKER_SESSION_TIMEOUT": "10", **extra}

    def write_bots(self, **kw: Any) -> None:
        """Rewrite the bots file (before starting workers): tg_limits / dc_limits TOML lines, coalesce."""
        write_sinks_bots(self.bots_file, self.sandbox.base_url, **kw)

    def start_sinks(self, name: str = "sinks", **extra: str) -> Child:
        return self.processes.start(name, ["-m", "botstream", "sinks"], env=self.env(name, **extra))

    def wait_ready(self, name: str, child: Child, owned: int | None = None, timeout: float = 90) -> None:
        """Until the worker serves /metrics and owns `owned` partitions of replies (any, if None)."""
        def ready() -> bool:
            if not child.alive():
                raise AssertionError(child.output()[-3000:])
            try:
                m = scrape(self.web_ports[name])
            except Exception:  # noqa: BLE001 - not listening yet
                return False
            value = m.get("botstream_sinks_owned_partitions")
            return value is not None and (value > 0 if owned is None else value == owned)
        wait_until(ready, timeout=timeout, interval=0.5, what=f"{name} ready")

    def produce(self, replies: list[dict[str, Any]], topic: str = "replies") -> None:
        if self._producer is None:
            self._producer = producer(self.bootstrap)
        for r in replies:
            self._producer.produce(self.settings.topic(topic), key=r["chat_key"].encode(),
                                   value=CODEC.encode("reply", r), headers=[(CORRELATION_ID, r["correlation_id"].encode())])
            self._producer.poll(0)
        assert self._producer.flush(60) == 0

    def retry_records(self) -> int:
        """Records on all retry levels so far."""
        total = 0
        for level in range(1, len(self.settings.retry_delays) + 1):
            reader = self.reader(f"replies.retry.{level}", None)
            total += len(reader.wait_for(10**9, timeout=1))
        return total

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`botstream <args>` against this rig's topics."""
        return subprocess.run([sys.executable, "-m", "botstream", *args], env=self.env("cli"),
                              capture_output=True, text=True, timeout=120)

    def reader(self, topic: str, record: str | None) -> TopicReader:
        r = TopicReader(self.bootstrap, self.settings.topic(topic), record)
        self.readers.append(r)
        return r


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rig(test_settings: Settings, kafka_bootstrap: str, tmp_path: Path, processes: ProcessGroup,
        sandbox: SandboxServer) -> Iterator[SinkRig]:
    report = apply_catalog(test_settings, kafka_bootstrap)
    assert report.ok, report.errors
    r = SinkRig(test_settings, kafka_bootstrap, tmp_path, processes, sandbox,
                write_sinks_bots(tmp_path / "bots.toml", sandbox.base_url))
    yield r
    for reader in r.readers:
        reader.close()
    r._producer = None  # destroyed now, not after the session's broker is gone (it would log refusals)
