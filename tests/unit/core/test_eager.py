"""run_eagerly: no task for coroutines that never wait; exact continuation for those that do."""

from __future__ import annotations

import asyncio

import pytest

from botstream.core.eager import Continuation, run_eagerly, start_task_eagerly


async def immediate(x: int) -> int:
    return x * 2


async def raises_at_once() -> None:
    raise ValueError("bad input")


async def waits(log: list[str], seconds: float = 0.01) -> str:
    log.append("start")
    await asyncio.sleep(0)          # a bare yield
    log.append("after yield")
    await asyncio.sleep(seconds)    # a real future
    log.append("after sleep")
    return "done"


def test_a_coroutine_that_never_waits_finishes_on_the_spot() -> None:
    assert run_eagerly(immediate(21)) == (True, 42)


def test_an_exception_before_the_first_wait_propagates() -> None:
    with pytest.raises(ValueError, match="bad input"):
        run_eagerly(raises_at_once())


async def test_a_waiting_coroutine_continues_where_it_stopped() -> None:
    log: list[str] = []
    done, rest = run_eagerly(waits(log))
    assert not done and isinstance(rest, Continuation)
    assert log == ["start"]  # ran up to its first suspension, on our stack
    assert await asyncio.wait_for(rest, 5) == "done"
    assert log == ["start", "after yield", "after sleep"]


async def test_a_timeout_cancels_the_continuation_and_runs_its_finally() -> None:
    cleaned: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally")

    done, rest = run_eagerly(slow())
    assert not done
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(rest, 0.05)  # type: ignore[arg-type]
    assert cleaned == ["finally"]


async def test_exceptions_after_the_wait_reach_the_awaiting_task() -> None:
    async def fails_later() -> None:
        await asyncio.sleep(0.001)
        raise RuntimeError("upstream down")

    done, rest = run_eagerly(fails_later())
    assert not done
    with pytest.raises(RuntimeError, match="upstream down"):
        await asyncio.create_task(_await(rest))


async def test_an_exception_caught_inside_the_coroutine_stays_inside() -> None:
    async def catches() -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        except TimeoutError:
            return "handled"
        return "not reached"

    done, rest = run_eagerly(catches())
    assert not done
    assert await _await(rest) == "handled"


def test_close_abandons_a_continuation_and_runs_finally() -> None:
    cleaned: list[str] = []

    async def holds() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally")

    async def main() -> None:
        done, rest = run_eagerly(holds())
        assert not done and isinstance(rest, Continuation)
        rest.close()

    asyncio.run(main())
    assert cleaned == ["finally"]


async def _await(awaitable):  # type: ignore[no-untyped-def]
    return await awaitable


async def test_many_eager_coroutines_may_wait_on_one_future() -> None:
    """Each suspended coroutine leaves the shared future usable by the next one (as a task would)."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    log: list[int] = []

    async def step(i: int) -> None:
        await ready
        log.append(i)

    rests = []
    for i in range(3):
        done, rest = run_eagerly(step(i))
        assert not done
        rests.append(asyncio.ensure_future(_await(rest)))
    ready.set_result(None)
    await asyncio.gather(*rests)
    assert log == [0, 1, 2]


async def test_an_eager_task_is_the_current_task_from_its_first_line() -> None:
    """Code that remembers its task across a wait (asyncio.timeout, anyio cancel scopes) works."""
    seen: list[asyncio.Task[object] | None] = []

    async def handler() -> str:
        seen.append(asyncio.current_task())
        async with asyncio.timeout(5):  # records the current task on entry, checks it on exit
            await asyncio.sleep(0.01)
        seen.append(asyncio.current_task())
        return "ok"

    outer = asyncio.current_task()
    done, value, task = start_task_eagerly(handler())
    assert not done and value is None and task is not None
    assert asyncio.current_task() is outer  # the caller's task is current again
    assert await task == "ok"
    assert seen == [task, task]


async def test_an_eager_task_that_never_waits_returns_its_result_at_once() -> None:
    async def quick() -> int:
        return 7

    assert start_task_eagerly(quick()) == (True, 7, None)
    with pytest.raises(ValueError, match="bad input"):
        start_task_eagerly(raises_at_once())


async def test_an_eager_task_runs_in_its_own_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")

    async def sets() -> str:
        var.set("inner")
        await asyncio.sleep(0)
        return var.get()

    done, _, task = start_task_eagerly(sets())
    assert not done and task is not None
    assert await task == "inner"
    assert var.get() == "outer"  # the caller's context is untouched
