"""One `botstream ingest` process per test module on the session broker, with its own topics.

The contract tests (one request, its records, its answer) share this process and its topic and tell
their records apart by update id; tests that kill ingest or the broker start their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from tests.integration.ingest.support import Ingest, end_offsets, start_ingest, write_bots
from tests.pipeline import TopicReader
from tests.processes import ProcessGroup


@dataclass
class IngestStack:
    settings: Settings
    bootstrap: str
    bots_file: Path
    ingest: Ingest
    reader: TopicReader

    @property
    def topic(self) -> str:
        return self.settings.topic("updates")

    def offsets(self) -> list[int]:
        return end_offsets(self.bootstrap, self.topic, self.settings.partitions)

    def records(self, match: Callable[[dict[str, Any]], bool], count: int, timeout: float = 30.0) -> list[Any]:
        """(key, update, message) of the first `count` records matching, waiting for them to arrive."""
        found: list[Any] = []

        def scan() -> bool:
            self.reader.poll(0.2)
            found[:] = [item for item in self.reader.items if match(item[1])]
            return len(found) >= count

        from tests.processes import wait_until

        wait_until(scan, timeout=timeout, interval=0, what=f"{count} matching record(s)")
        return found


def isolated_settings(bootstrap: str, data_dir: Path) -> Settings:
    """Like the `test_settings` fixture, for a module: own topic prefix, 4 partitions."""
    return Settings.from_env({}, kafka_bootstrap_servers=bootstrap, topic_prefix=f"bs-{uuid.uuid4().hex[:8]}",
                             partitions=4, data_dir=data_dir, cache_dir=Settings().cache_dir)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestStack]:
    tmp = tmp_path_factory.mktemp("ingest")
    settings = isolated_settings(kafka_bootstrap, tmp / "data")
    report = apply_catalog(settings, kafka_bootstrap)
    assert report.ok, report.errors
    bots_file = write_bots(tmp / "bots.toml")
    group = ProcessGroup(tmp / "logs")
    reader: TopicReader | None = None
    try:
        ingest = start_ingest(group, settings, kafka_bootstrap, bots_file)
        reader = TopicReader(kafka_bootstrap, settings.topic("updates"), "update")
        yield IngestStack(settings, kafka_bootstrap, bots_file, ingest, reader)
    finally:
        if reader is not None:
            reader.close()
        group.stop_all()
