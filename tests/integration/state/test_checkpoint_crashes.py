"""The batch store's crash points, on the real broker.

A small worker counts records per key through `PartitionStore` and `Checkpointer` (the streams and
sinks workers' state path, without Faust) and commits its input offsets with a real consumer group.
It is stopped dead at a chosen step of a checkpoint; a second worker (same data dir, or an empty one)
restores from the changelog and finishes. Each key's count must equal the records of that key exactly:
a write of an event that is processed again must not be counted twice (restore skips changelog
records past the committed offset), and a write whose offset was committed must not be lost (restore
applies what the database missed).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from botstream.core.kafka import consumer_config, producer_config, read_to_end
from botstream.core.producer import OutputProducer
from botstream.core.state.checkpoint import Checkpointer
from botstream.core.state.restore import committed_offsets, restore_partition
from botstream.core.state.store import PartitionStore, TableSpec
from tests.pipeline import client_settings

pytestmark = pytest.mark.kafka

KEYS = 5
PER_KEY = 60
CHECKPOINT_EVERY = 50
TABLE = "counts"
FACTS = "seen"  # the sinks' ledger kind of table: facts written through (`put_fact`)


class Crash(Exception):  # noqa: N818 - stands for the process dying at that point
    pass


class CountingWorker:
    def __init__(self, bootstrap: str, source: str, changelog: str, out: str, group: str, data: Path,
                 crash_at: str | None = None, crash_on: int = 3) -> None:
        settings = client_settings(bootstrap)
        self.source, self.out, self.group = source, out, group
        self.store = PartitionStore(data / "p0", 0, [TableSpec(TABLE, changelog), TableSpec(FACTS, changelog + "-facts")])
        restorer = Consumer(consumer_config(settings, group))
        try:
            committed = committed_offsets(restorer, [source], 0)
            self.report = restore_partition(self.store, restorer, committed)
        finally:
            restorer.close()
        self.consumer = Consumer(consumer_config(settings, group))
        start = committed[source]
        self.consumer.assign([TopicPartition(source, 0, start if start is not None else 0)])
        self.outputs = OutputProducer(producer_config(settings, bootstrap=bootstrap))
        self.changelog = OutputProducer(producer_config(settings, bootstrap=bootstrap), track_offsets=True)
        self.store.on_fact = lambda w, p: self.changelog.produce(w.topic, w.value, w.key, partition=p)
        self.crash_at, self.crash_on, self.checkpoints = crash_at, crash_on, 0
        self.checkpointer = Checkpointer(outputs=self.outputs, changelog=self.changelog,
                                         changelog_topics=lambda: [changelog], step=self._step)

    def _step(self, name: str) -> None:
        if name == self.crash_at and self.checkpoints == self.crash_on:
            raise Crash(name)

    async def run(self, until_end: int) -> None:
        """Process records up to offset `until_end` (exclusive), checkpointing every CHECKPOINT_EVERY."""
        position = None
        since = 0
        while position is None or position < until_end:
            for msg in self.consumer.consume(100, timeout=1.0):
                if msg.error():
                    continue
                offset = msg.offset()
                assert offset is not None
                key = msg.key() or b""
                count = self.store.get(TABLE, key, 0) + 1
                self.store.put(TABLE, key, count, self.source, offset)
                # like a delivery: true once it happened, whatever becomes of the offsets
                self.store.put_fact(FACTS, str(offset).encode(), 1)
                self.outputs.produce(self.out, str(offset).encode(), key)
                position, since = offset + 1, since + 1
                if since >= CHECKPOINT_EVERY or position >= until_end:
                    await self.checkpoint(position)
                    since = 0

    async def checkpoint(self, position: int) -> None:
        self.checkpoints += 1

        async def commit() -> bool:
            self.consumer.commit(offsets=[TopicPartition(self.source, 0, position)], asynchronous=False)
            return True

        await self.checkpointer.run({0: self.store}, {0: {self.source: position}}, release=lambda: None,
                                    commit=commit)

    def die(self) -> None:
        """What a kill -9 leaves: no commit, nothing more persisted (what was flushed is in Kafka)."""
        self.store.close()
        self.consumer.close()
        self.outputs.close(purge=True)
        self.changelog.close(purge=True)

    def stop(self) -> None:
        self.store.close()
        self.consumer.close()
        self.outputs.close()
        self.changelog.close()


def counts_in_changelog(bootstrap: str, changelog: str, source: str, committed: int) -> dict[bytes, int]:
    """What a restore from an empty data dir would rebuild."""
    settings = client_settings(bootstrap)
    consumer = Consumer(consumer_config(settings))
    store_dir = Path(tempfile.mkdtemp(prefix="restore-check-"))
    store = PartitionStore(store_dir / "p0", 0, [TableSpec(TABLE, changelog)])
    try:
        restore_partition(store, consumer, {source: committed})
        return {k: v for k, v in store.scan(TABLE)}
    finally:
        store.destroy()
        consumer.close()


def kafka_admin_topic(bootstrap: str, name: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from botstream.core.kafka import admin_config

    admin = AdminClient(admin_config(client_settings(bootstrap)))
    admin.create_topics([NewTopic(name, 1, 1, config={"cleanup.policy": "compact"})])[name].result(30)


@pytest.mark.parametrize("crash_at", ["prepared", "flushed", "committed"])
@pytest.mark.parametrize("same_dir", [True, False], ids=["same-data-dir", "empty-data-dir"])
def test_a_crash_at_any_checkpoint_step_neither_loses_nor_double_counts(
        crash_at: str, same_dir: bool, kafka_bootstrap: str, make_topic, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = make_topic("in", partitions=1)
    changelog = make_topic("counts-changelog", partitions=1, config={"cleanup.policy": "compact"})
    kafka_admin_topic(kafka_bootstrap, changelog + "-facts")
    out = make_topic("out", partitions=1)
    group = f"g-{source}"
    p = OutputProducer(producer_config(client_settings(kafka_bootstrap)))
    for i in range(KEYS * PER_KEY):
        p.produce(source, b"x", f"k{i % KEYS}".encode(), partition=0)
    p.flush()
    p.close()
    total = KEYS * PER_KEY

    first = CountingWorker(kafka_bootstrap, source, changelog, out, group, tmp_path / "a", crash_at=crash_at)
    with pytest.raises(Crash):
        asyncio.run(first.run(total))
    first.die()

    second = CountingWorker(kafka_bootstrap, source, changelog, out, group, tmp_path / ("a" if same_dir else "b"))
    # Only the crashed checkpoint's changelog records (one per key, if they were flushed at all) lie past
    # the committed offset; facts carry no position and always apply.
    assert second.report.skipped <= KEYS
    if crash_at == "flushed":
        assert second.report.skipped == KEYS
    asyncio.run(second.run(total))
    counts = {k: v for k, v in second.store.scan(TABLE)}
    facts = {int(k) for k, _ in second.store.scan(FACTS)}
    second.stop()
    # Facts written before the crash were found again, even those of events redone after it (with the
    # same data dir: read back from RocksDB; with an empty one: from the changelog, once flushed).
    assert facts == set(range(KEYS * PER_KEY))
    assert counts == {f"k{i}".encode(): PER_KEY for i in range(KEYS)}
    # A restore from nothing but the changelog agrees.
    assert counts_in_changelog(kafka_bootstrap, changelog, source, total) == counts
    # Outputs: every input offset at least once; the copies are the records redone after the crash.
    settings = client_settings(kafka_bootstrap)
    reader = Consumer(consumer_config(settings))
    try:
        seen = Counter(int(m.value() or b"-1") for m in read_to_end(reader, [TopicPartition(out, 0, 0)]))
    finally:
        reader.close()
    assert set(seen) == set(range(total))
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates <= CHECKPOINT_EVERY, duplicates  # at most the crashed checkpoint's records
    print(f"\ncrash after '{crash_at}' ({'same' if same_dir else 'empty'} data dir): {duplicates} outputs "
          f"redone, restore applied {second.report.applied} and skipped {second.report.skipped} changelog records")
