"""ChatRunner: chat order, chats concurrent, no task for steps that never wait, give-backs."""

from __future__ import annotations

import asyncio

import pytest

from botstream.core.chats import ChatRunner
from botstream.core.generation import Abandoned


class Recorder:
    def __init__(self, slow: dict[str, float] | None = None, fail: set[str] | None = None,
                 abandon: set[str] | None = None) -> None:
        self.slow = slow or {}
        self.fail = fail or set()
        self.abandon = abandon or set()
        self.started: list[str] = []
        self.done: list[str] = []
        self.given_back: list[str] = []
        self.tasks: list[asyncio.Task[object] | None] = []

    async def step(self, event: str) -> None:
        self.started.append(event)
        self.tasks.append(asyncio.current_task())
        if event in self.slow:
            await asyncio.sleep(self.slow[event])
        if event in self.fail:
            raise RuntimeError(f"bug in {event}")
        if event in self.abandon:
            raise Abandoned(event)


def chat(event: str) -> str:
    return event.split(".")[0]


async def test_steps_that_never_wait_finish_inside_submit_without_a_task() -> None:
    r = Recorder()
    runner = ChatRunner(r.step, r.done.append)
    for e in ["a.1", "b.1", "a.2"]:
        runner.submit(chat(e), e)
    assert r.done == ["a.1", "b.1", "a.2"]  # already, before any await
    assert runner.busy == 0


async def test_a_waiting_chat_holds_back_only_itself_and_keeps_its_order() -> None:
    r = Recorder(slow={"a.1": 0.05})
    runner = ChatRunner(r.step, r.done.append)
    for e in ["a.1", "b.1", "a.2", "b.2", "a.3"]:
        runner.submit(chat(e), e)
    assert r.done == ["b.1", "b.2"]  # chat a waits; b went through
    assert runner.busy == 1 and runner.waiting("a") == ["a.2", "a.3"]
    assert await runner.drain(5)
    assert r.done == ["b.1", "b.2", "a.1", "a.2", "a.3"]


async def test_a_step_that_raises_counts_as_done_and_the_chat_goes_on() -> None:
    r = Recorder(fail={"a.1"})
    runner = ChatRunner(r.step, r.done.append)
    runner.submit("a", "a.1")
    runner.submit("a", "a.2")
    assert r.done == ["a.1", "a.2"]


async def test_an_abandoned_step_is_given_back_not_done() -> None:
    r = Recorder(slow={"a.1": 0.01}, abandon={"a.1"})
    runner = ChatRunner(r.step, r.done.append, given_back=r.given_back.append)
    runner.submit("a", "a.1")
    runner.submit("a", "a.2")
    assert await runner.drain(5)
    assert r.given_back == ["a.1"] and r.done == ["a.2"]


async def test_max_busy_holds_the_intake_until_a_chat_is_free() -> None:
    r = Recorder(slow={"a.1": 0.05, "b.1": 0.05})
    runner = ChatRunner(r.step, r.done.append, max_busy=2)
    runner.submit("a", "a.1")
    runner.submit("b", "b.1")
    waiter = asyncio.ensure_future(runner.wait_for_room())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await asyncio.wait_for(waiter, 5)
    assert runner.busy < 2


@pytest.mark.parametrize("own_task", [False, True])
async def test_own_task_steps_see_one_task_from_their_first_line(own_task: bool) -> None:
    r = Recorder(slow={"a.1": 0.01})
    runner = ChatRunner(r.step, r.done.append, own_task=own_task)
    outer = asyncio.current_task()
    runner.submit("a", "a.1")
    runner.submit("a", "a.2")
    assert await runner.drain(5)
    assert r.done == ["a.1", "a.2"]
    if own_task:  # the chat's own task from the start: anyio cancel scopes and asyncio.timeout work
        assert r.tasks[0] is not outer and r.tasks[0] is r.tasks[1]
    else:  # started on the caller's task, continued in another
        assert r.tasks[0] is outer


async def test_cancel_all_stops_waiting_steps() -> None:
    r = Recorder(slow={"a.1": 10})
    runner = ChatRunner(r.step, r.done.append)
    runner.submit("a", "a.1")
    assert not await runner.drain(0.05)
    await runner.cancel_all()
    assert runner.busy == 0 and r.done == []
