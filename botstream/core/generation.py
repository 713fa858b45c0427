"""Giving work back at a rebalance or a stop, instead of waiting for it.

A sink holds events unacknowledged for a long time on purpose: a retry record sleeps until its
not-before time (up to the last retry delay), and a reply waits for its rate-limit budget. Faust, on
a rebalance or a stop, waits until every event it handed out is acknowledged (or garbage) before it
lets the partitions go — with sleeping events that would stall the whole consumer group.

So every event is tagged with the generation it was taken in. `bump()` (called as a rebalance
starts and when the worker stops) starts a new generation: every wait of an older generation ends at
once with `Abandoned`, events not yet started are skipped, and none of them is acknowledged — the
partition's next owner takes them again from the committed offset, and the delivery ledger makes
redoing them safe. HTTP calls already in flight are not cut: they end within the send timeout and
their results are recorded, so the ledger knows about them before the partitions move.
"""

from __future__ import annotations

import asyncio

__all__ = ["Abandoned", "Generation"]


class Abandoned(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The event's generation is over; stop working on it and do not acknowledge it."""


class Generation:
    def __init__(self) -> None:
        self.current = 0
        self._changed = asyncio.Event()

    def bump(self) -> int:
        self.current += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self.current

    def is_current(self, generation: int) -> bool:
        return generation == self.current

    def check(self, generation: int) -> None:
        if generation != self.current:
            raise Abandoned(f"generation {generation} ended (now {self.current})")

    async def sleep(self, seconds: float, generation: int) -> None:
        """Sleep `seconds`, or raise `Abandoned` as soon as `generation` ends."""
        self.check(generation)
        if seconds <= 0:
            return
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), seconds)
        except TimeoutError:
            return
        raise Abandoned(f"generation {generation} ended while waiting")
