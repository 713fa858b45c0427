"""Look at topics from outside while something else works on them: counts, waits, record timestamps.

Counting uses high watermarks only (no fetching), so the benchmark takes next to no CPU from the
process it measures; the records themselves are read afterwards. Offsets equal record counts here:
every producer in the benchmark is idempotent or plain, never transactional (no control records).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from botstream.core.kafka import consumer_config
from tests.pipeline import client_settings


@dataclass(frozen=True)
class Span:
    """Records read from a topic between two offset maps, summarised by their timestamps (ms)."""

    count: int
    first_ms: int
    last_ms: int

    @property
    def seconds(self) -> float:
        return max(self.last_ms - self.first_ms, 1) / 1000

    def rate(self) -> float:
        """Records per second between the first and the last record's timestamp."""
        return (self.count - 1) / self.seconds if self.count > 1 else 0.0


class TopicProbe:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumer = Consumer(consumer_config(client_settings(bootstrap), f"bench-probe-{uuid.uuid4().hex[:8]}",
                                                 log_level=2))

    def partitions(self, topic: str) -> list[int]:
        md = self.consumer.list_topics(topic, timeout=10).topics[topic]
        if md.error is not None:
            raise RuntimeError(f"{topic}: {md.error}")
        return sorted(md.partitions)

    def end_offsets(self, topic: str) -> dict[int, int]:
        for attempt in range(50):  # a topic just created may have no leader yet
            try:
                return {p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                               cached=False)[1]
                        for p in self.partitions(topic)}
            except KafkaException:
                if attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def count(self, topic: str, since: dict[int, int] | None = None) -> int:
        since = since or {}
        return sum(end - since.get(p, 0) for p, end in self.end_offsets(topic).items())

    def wait_count(self, topic: str, expected: int, *, since: dict[int, int] | None = None, timeout: float,
                   stall: float = 60.0, alive: Callable[[], bool] = lambda: True, interval: float = 0.25) -> int:
        """Poll until `expected` records arrived; gives up at `timeout`, after `stall` s without progress,
        or when `alive()` turns false. Returns the count reached."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            n = self.count(topic, since)
            now = time.monotonic()
            if n != last:
                last, last_change = n, now
            if n >= expected or now > deadline or now - last_change > stall or not alive():
                return n
            time.sleep(interval)

    def read(self, topic: str, since: dict[int, int] | None = None,
             until: dict[int, int] | None = None) -> Iterator[Message]:
        """Every record from `since` (default: the beginning) up to `until` (default: the end now)."""
        until = until or self.end_offsets(topic)
        since = since or {}
        reader = Consumer(consumer_config(client_settings(self.bootstrap), f"bench-read-{uuid.uuid4().hex[:8]}",
                                          log_level=2))
        try:
            todo = {p: end for p, end in until.items() if end > since.get(p, 0)}
            reader.assign([TopicPartition(topic, p, since.get(p, OFFSET_BEGINNING)) for p in todo])
            deadline = time.monotonic() + 120
            while todo and time.monotonic() < deadline:
                for msg in reader.consume(5000, timeout=1.0):
                    if msg.error():
                        continue
                    p, offset = msg.partition(), msg.offset()
                    if p is None or offset is None or p not in todo or offset >= todo[p]:
                        continue
                    yield msg
                    if offset + 1 >= todo[p]:
                        del todo[p]
        finally:
            reader.close()

    def span(self, topic: str, since: dict[int, int] | None = None, until: dict[int, int] | None = None) -> Span:
        count, first, last = 0, None, None
        for msg in self.read(topic, since, until):
            ts = msg.timestamp()[1]
            first = ts if first is None or ts < first else first
            last = ts if last is None or ts > last else last
            count += 1
        return Span(count, first or 0, last or 0)

    def close(self) -> None:
        self.consumer.close()
