"""Bulk restore of a partition's state from its changelogs, before any of its input is processed.

The database says how far each changelog was applied (`PartitionStore.changelog_position`); the
rest is read with a confluent-kafka consumer (`read_to_end`) and written in `WriteBatch`es of
`BATCH` records, never one put per record. A record carries the input position of the write it
holds (`botstream-source: <topic>@<offset>`); it is applied only when that offset is below the
group's committed offset of that input: a write past the committed offset belongs to an event that
will be processed again (its checkpoint flushed the changelog but did not commit), so applying it
would count that event twice. A record without the header (a fact written through, see
`PartitionStore.put_fact`; a record written by `botstream replay` or by an older version of
botstream) is always applied.

Local tables (no changelog) are derived data: `derive(table, key, value)` returns the local rows a
restored record implies (the dedupe expiry index from the dedupe entries), written in the same batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from botstream.core.kafka import header_map, read_to_end
from botstream.core.state.store import PartitionStore
from botstream.schemas.headers import SOURCE

__all__ = ["BATCH", "Derive", "RestoreReport", "committed_offsets", "parse_source", "restore_partition",
           "should_apply"]

BATCH = 20_000
Derive = Callable[[str, bytes, bytes], Iterable[tuple[str, bytes, bytes | None]]]


@dataclass
class RestoreReport:
    partition: int
    read: int = 0
    applied: int = 0
    skipped: int = 0
    seconds: float = 0.0


def parse_source(raw: bytes | None) -> tuple[str, int] | None:
    """b"updates@42" -> ("updates", 42); None when absent or unreadable (then the record applies)."""
    if not raw:
        return None
    topic, sep, offset = raw.rpartition(b"@")
    if not sep or not offset.isdigit():
        return None
    return topic.decode(errors="replace"), int(offset)


def should_apply(source: tuple[str, int] | None, committed: Mapping[str, int | None]) -> bool:
    if source is None:
        return True
    topic, offset = source
    limit = committed.get(topic)
    return limit is not None and offset < limit


def committed_offsets(consumer: Consumer, topics: Iterable[str], partition: int,
                      timeout_s: float = 30.0) -> dict[str, int | None]:
    """The group's committed offset of each input topic's `partition` (None: nothing committed)."""
    asked = [TopicPartition(t, partition) for t in topics]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = consumer.committed(asked, timeout=max(1.0, deadline - time.monotonic()))
            break
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = bool(getattr(error, "retriable", lambda: False)()) or getattr(error, "code", lambda: None)() in (
                KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                KafkaError.COORDINATOR_NOT_AVAILABLE)
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the group's coordinator is moving or loading: ask again
    out: dict[str, int | None] = {}
    for tp in answer:
        out[tp.topic] = tp.offset if tp.offset is not None and tp.offset >= 0 else None
    return out


def restore_partition(store: PartitionStore, consumer: Consumer, committed: Mapping[str, int | None], *,
                      derive: Derive | None = None, timeout_s: float = 600.0,
                      stop: threading.Event | None = None) -> RestoreReport:
    """Bring `store` up to the end of its changelogs (as they are now). Blocking: run it in a thread.
    `stop` set (the partition was revoked meanwhile) ends it at the next batch."""
    started = time.perf_counter()
    report = RestoreReport(store.partition)
    for table in store.tables.values():
        if table.changelog is None:
            continue
        position = store.changelog_position(table.changelog)
        start = TopicPartition(table.changelog, store.partition,
                               position if position is not None else OFFSET_BEGINNING)
        items: list[tuple[str, bytes, bytes | None]] = []
        last = -1
        for msg in read_to_end(consumer, [start], timeout_s=timeout_s):
            report.read += 1
            last = msg.offset() or 0
            key = msg.key()
            if key is None:
                continue
            source = None
            headers = msg.headers()
            if headers:
                raw_source = header_map(headers).get(SOURCE)
                source = parse_source(raw_source)
            if not should_apply(source, committed):
                report.skipped += 1
            else:
                raw = msg.value()
                items.append((table.name, key, raw))
                if derive is not None and raw is not None:
                    items.extend(derive(table.name, key, raw))
                report.applied += 1
            if len(items) >= BATCH:
                store.write_batch(items, {table.changelog: last + 1})
                items = []
                if stop is not None and stop.is_set():
                    report.seconds = time.perf_counter() - started
                    return report
        if last >= 0:
            store.write_batch(items, {table.changelog: last + 1})
    report.seconds = time.perf_counter() - started
    return report
