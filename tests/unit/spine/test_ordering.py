from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st

from botstream.core.chats import ChatRunner
from botstream.core.ordering import OffsetTracker


def test_acks_only_the_completed_prefix() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    for off in (1, 2, 3):
        t.started(0, off, f"e{off}")
    assert t.complete(0, 3) == []
    assert t.complete(0, 1) == ["e1"]
    assert t.complete(0, 2) == ["e2", "e3"]
    assert t.in_flight == 0


@given(st.permutations(list(range(30))))
def test_any_completion_order_acks_in_offset_order(order: list[int]) -> None:
    t: OffsetTracker[int] = OffsetTracker()
    for off in range(30):
        t.started(0, off, off)
    acked: list[int] = []
    for off in order:
        acked += t.complete(0, off)
        assert acked == list(range(len(acked)))  # never past an unfinished offset
    assert acked == list(range(30))


class Intake:
    """What the workers' runtime does: a ChatRunner per chat, acknowledgements through an OffsetTracker."""

    def __init__(self, process, max_busy: int = 64) -> None:  # type: ignore[no-untyped-def]
        self.tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
        self.acked: list[int] = []
        self.runner: ChatRunner[tuple[str, int]] = ChatRunner(process, self._done, max_busy=max_busy)

    def _done(self, ev: tuple[str, int]) -> None:
        self.acked += [off for _, off in self.tracker.complete(0, ev[1])]

    async def submit(self, ev: tuple[str, int]) -> None:
        self.tracker.started(0, ev[1], ev)
        self.runner.submit(ev[0], ev)
        await self.runner.wait_for_room()


async def test_chats_keep_their_order_run_concurrently_and_are_acknowledged_in_order() -> None:
    events = [(f"chat{i % 5}", off) for off, i in enumerate(range(100))]
    handled: dict[str, list[int]] = {}
    concurrent = 0
    peak = 0
    rng = random.Random(7)

    async def process(ev: tuple[str, int]) -> None:
        nonlocal concurrent, peak
        concurrent += 1
        peak = max(peak, concurrent)
        await asyncio.sleep(rng.random() / 500)
        handled.setdefault(ev[0], []).append(ev[1])
        concurrent -= 1

    intake = Intake(process, max_busy=5)
    for ev in events:
        await intake.submit(ev)
    assert await intake.runner.drain(5)
    for offs in handled.values():
        assert offs == sorted(offs)
    assert intake.acked == list(range(100))
    assert peak > 1


async def test_a_slow_chat_does_not_hold_up_the_others() -> None:
    done: list[str] = []
    gate = asyncio.Event()

    async def process(ev: tuple[str, int]) -> None:
        if ev[0] == "slow":
            await gate.wait()
        done.append(ev[0])

    intake = Intake(process)
    await intake.submit(("slow", 0))
    for i in range(1, 10):
        await intake.submit((f"fast{i}", i))
    await asyncio.sleep(0.05)
    assert len(done) == 9 and intake.acked == []  # others done; nothing acked past the slow one
    gate.set()
    assert await intake.runner.drain(2)
    assert intake.acked == list(range(10))
