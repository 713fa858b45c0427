"""Generation and ChatLocks: giving work back at a rebalance, and one step at a time per chat."""

from __future__ import annotations

import asyncio

import pytest

from botstream.core.generation import Abandoned, Generation
from botstream.sinks.chatlocks import ChatLocks


async def test_a_sleep_ends_at_its_time_when_nothing_happens() -> None:
    gen = Generation()
    await gen.sleep(0.01, gen.current)
    await gen.sleep(0, gen.current)


async def test_a_new_generation_wakes_every_older_sleeper_at_once() -> None:
    gen = Generation()
    sleepers = [asyncio.create_task(gen.sleep(60, gen.current)) for _ in range(3)]
    await asyncio.sleep(0)
    gen.bump()
    results = await asyncio.wait_for(asyncio.gather(*sleepers, return_exceptions=True), 1)
    assert all(isinstance(r, Abandoned) for r in results)
    with pytest.raises(Abandoned):
        gen.check(0)
    gen.check(1)
    await gen.sleep(0.001, 1)  # the new generation sleeps normally


async def test_chat_locks_serialise_one_chat_and_not_others_and_clean_up() -> None:
    locks = ChatLocks()
    order: list[str] = []

    async def step(chat: str, name: str, pause: float) -> None:
        async with locks.hold(chat):
            order.append(f"{name}+")
            await asyncio.sleep(pause)
            order.append(f"{name}-")

    await asyncio.gather(step("c1", "a", 0.02), step("c1", "b", 0), step("c2", "x", 0))
    assert order.index("a-") < order.index("b+")  # same chat: one after the other
    assert order.index("x+") < order.index("a-")  # another chat: not held up
    assert len(locks) == 0
