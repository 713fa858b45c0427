from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st

from botstream.core.ordering import OffsetTracker
from botstream.core.scheduler import ChatScheduler


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


async def test_scheduler_keeps_chat_order_runs_chats_concurrently_and_acks_in_order() -> None:
    events = [(f"chat{i % 5}", off) for off, i in enumerate(range(100))]
    handled: dict[str, list[int]] = {}
    acked: list[int] = []
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

    s: ChatScheduler[tuple[str, int]] = ChatScheduler(process, lambda ev: acked.append(ev[1]), chat_of=lambda ev: ev[0],
                                                      position_of=lambda ev: (0, ev[1]), max_chats=5, max_in_flight=20)
    for ev in events:
        await s.submit(ev)
    assert await s.drain(5)
    for offs in handled.values():
        assert offs == sorted(offs)
    assert acked == list(range(100))
    assert peak > 1


async def test_a_slow_chat_does_not_hold_up_the_others() -> None:
    done: list[str] = []
    gate = asyncio.Event()

    async def process(ev: tuple[str, int]) -> None:
        if ev[0] == "slow":
            await gate.wait()
        done.append(ev[0])

    acked: list[int] = []
    s: ChatScheduler[tuple[str, int]] = ChatScheduler(process, lambda ev: acked.append(ev[1]), chat_of=lambda ev: ev[0],
                                                      position_of=lambda ev: (0, ev[1]))
    await s.submit(("slow", 0))
    for i in range(1, 10):
        await s.submit((f"fast{i}", i))
    await asyncio.sleep(0.05)
    assert len(done) == 9 and acked == []  # others done; nothing acked past the slow one
    gate.set()
    assert await s.drain(2)
    assert acked == list(range(10))
