"""One checkpoint, in the order that survives a crash between any two of its steps.

    1. prepare   each partition's store turns its writes below the committable offsets into changelog
                 records (one per dirty key) and moves them to its flushed layer
    2. flush     the outputs and the changelog records are acknowledged by the broker (acks=all);
                 a failure raises `DeliveryFailed` and nothing below happens
    3. release   the inputs are acknowledged (Faust's events), so the commit may include them
    4. commit    the input offsets are committed
    5. persist   each store writes its flushed layer in one `WriteBatch`, with the positions it reflects

A crash after 2 or 3: nothing committed; the changelog holds records past the committed offset,
which restore skips (their events are processed again). A crash after 4: the database is behind the
committed offset; restore applies the changelog records below it. The database is never ahead of
the committed offsets, so restore never has to undo anything.

When the commit does not happen (a rebalance is under way, another commit was in flight), the
flushed layers stay in memory, readable, and are persisted after the next successful commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from botstream.core.producer import OutputProducer
from botstream.core.state.store import PartitionStore
from botstream.schemas.headers import SOURCE

__all__ = ["STEPS", "Checkpointer"]

STEPS = ("prepared", "flushed", "released", "committed", "persisted")


class Checkpointer:
    """Runs checkpoints for one worker. `step(name)`, when given, is called after each step (tests
    use it to stop the process at a chosen point)."""

    def __init__(self, *, outputs: OutputProducer, changelog: OutputProducer,
                 changelog_topics: Callable[[], list[str]], flush_timeout_s: float = 30.0,
                 step: Callable[[str], None] | None = None) -> None:
        self.outputs = outputs
        self.changelog = changelog
        self.changelog_topics = changelog_topics
        self.flush_timeout_s = flush_timeout_s
        self._step = step
        self._unpersisted: set[int] = set()  # partitions whose flushed layer awaits a commit

    async def run(self, stores: Mapping[int, PartitionStore], committable: Mapping[int, Mapping[str, int]], *,
                  release: Callable[[], None], commit: Callable[[], Awaitable[bool]]) -> bool:
        """One checkpoint over `committable` (partition -> {input topic: next offset}). True when the
        input offsets were committed (and the stores persisted)."""
        changelog = self.changelog
        for partition, offsets in committable.items():
            store = stores.get(partition)
            if store is None:
                continue
            for write in store.prepare(offsets):
                changelog.produce(write.topic, write.value, write.key, headers=[(SOURCE, write.source)],
                                  partition=partition)
            self._unpersisted.add(partition)
            await asyncio.sleep(0)  # one partition at a time: records keep flowing in between
        self._mark("prepared")
        await asyncio.to_thread(self._flush)
        self._mark("flushed")
        release()
        self._mark("released")
        if not await commit():
            return False
        self._mark("committed")
        positions = changelog.next_offsets
        topics = self.changelog_topics()
        for partition in sorted(self._unpersisted):
            store = stores.get(partition)
            if store is not None:
                store.persist({t: positions[(t, partition)] for t in topics if (t, partition) in positions})
                await asyncio.sleep(0)
        self._unpersisted.clear()
        self._mark("persisted")
        return True

    def forget(self, partition: int) -> None:
        """The partition is gone (revoked): its flushed layer went with its store."""
        self._unpersisted.discard(partition)

    def _flush(self) -> None:
        self.outputs.flush(self.flush_timeout_s)
        self.changelog.flush(self.flush_timeout_s)

    def _mark(self, name: str) -> None:
        if self._step is not None:
            self._step(name)
