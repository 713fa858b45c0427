from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import free_port
from tests.integration.sinks.support import scrape
from tests.pipeline import TopicReader, write_bots_file
from tests.processes import Child, ProcessGroup


@dataclass
class Pipeline:
    settings: Settings
    bootstrap: str
    bots_file: Path
    processes: ProcessGroup
    tmp: Path
    readers: list[TopicReader] = field(default_factory=list)
    web_ports: dict[str, int] = field(default_factory=dict)

    def env(self, name: str, **extra: str) -> dict[str, str]:
        s = self.settings
        port = self.web_ports.setdefault(name, free_port())
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BOTSTREAM_TOPIC_PREFIX": s.topic_prefix,
                "BOTSTREAM_PARTITIONS": str(s.partitions), "BOTSTREAM_BOTS_FILE": str(self.bots_file),
                "BOTSTREAM_DATA_DIR": str(self.tmp / f"data-{name}"), "BOTSTREAM_LOG_LEVEL": "INFO",
                "BOTSTREAM_STREAMS_WEB_PORT": str(port), **extra}

    def start_streams(self, name: str = "streams", **extra: str) -> Child:
        return self.processes.start(name, ["-m", "botstream", "streams"], env=self.env(name, **extra))

    def owned_partitions(self, name: str) -> float | None:
        """The worker's `botstream_streams_owned_partitions`, or None while it does not answer."""
        try:
            return scrape(self.web_ports[name]).get("botstream_streams_owned_partitions")
        except httpx.HTTPError:
            return None

    def reader(self, topic: str, record: str | None) -> TopicReader:
        r = TopicReader(self.bootstrap, self.settings.topic(topic), record)
        self.readers.append(r)
        return r


@pytest.fixture
def make_pipeline(test_settings: Settings, kafka_bootstrap: str, tmp_path: Path, processes: ProcessGroup):  # type: ignore[no-untyped-def]
    made: list[Pipeline] = []

    def make(partitions: int = 4, handler: str = "botstream.streams.examples.echo") -> Pipeline:
        settings = dataclasses.replace(test_settings, partitions=partitions,
                                       topic_prefix=f"{test_settings.topic_prefix}-{len(made)}")
        report = apply_catalog(settings, kafka_bootstrap)
        assert report.ok, report.errors
        bots = write_bots_file(tmp_path / f"bots-{len(made)}.toml", handler=handler)
        p = Pipeline(settings, kafka_bootstrap, bots, processes, tmp_path)
        made.append(p)
        return p

    yield make
    for p in made:
        for r in p.readers:
            r.close()


@pytest.fixture
def pipeline(make_pipeline):  # type: ignore[no-untyped-def]
    return make_pipeline()
