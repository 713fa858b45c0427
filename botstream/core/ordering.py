"""Ordered acknowledgement for out-of-order completion (sans-IO).

Different chats of one partition are handled concurrently, so their events finish out of offset order.
Kafka commits one offset per partition, meaning "everything before this is done". `OffsetTracker`
records the offsets a worker has taken, in order, per partition, and releases them for acknowledgement
only as a gap-free prefix completes — an event is never acknowledged while an earlier event of its
partition is still in flight, so a crash never skips an unhandled update.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Lane(Generic[T]):
    pending: deque[tuple[int, T]] = field(default_factory=deque)  # (offset, item) in arrival order
    done: set[int] = field(default_factory=set)


class OffsetTracker(Generic[T]):
    """Per-partition arrival order; `complete()` returns the items now safe to acknowledge, in order."""

    def __init__(self) -> None:
        self._lanes: dict[Hashable, _Lane[T]] = {}
        self.in_flight = 0

    def started(self, partition: Hashable, offset: int, item: T) -> None:
        lane = self._lanes.setdefault(partition, _Lane())
        if lane.pending and offset <= lane.pending[-1][0]:
            raise ValueError(f"offset {offset} of {partition!r} arrived after {lane.pending[-1][0]}")
        lane.pending.append((offset, item))
        self.in_flight += 1

    def complete(self, partition: Hashable, offset: int) -> list[T]:
        lane = self._lanes.get(partition)
        if lane is None:  # revoked meanwhile: the new owner acknowledges it
            return []
        lane.done.add(offset)
        ready: list[T] = []
        while lane.pending and lane.pending[0][0] in lane.done:
            off, item = lane.pending.popleft()
            lane.done.discard(off)
            ready.append(item)
        self.in_flight -= len(ready)
        return ready

    def lanes(self) -> list[Hashable]:
        """The partitions with events taken and not yet released."""
        return list(self._lanes)

    def pending(self, partition: Hashable) -> int:
        lane = self._lanes.get(partition)
        return len(lane.pending) if lane else 0

    def forget(self, partition: Hashable) -> list[T]:
        """A partition was revoked: drop its lane (its events will be redelivered to the new owner)."""
        lane = self._lanes.pop(partition, None)
        if lane is None:
            return []
        self.in_flight -= len(lane.pending)
        return [item for _, item in lane.pending]
