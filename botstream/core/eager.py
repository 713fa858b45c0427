"""Run a coroutine eagerly: to completion right away when it never has to wait, else hand the rest
of it to a task.

Two forms:

- `run_eagerly(coro)` runs it on the caller's task. For the project's own steps, which do not depend
  on which task runs them.
- `start_task_eagerly(coro)` runs it as a task of its own that has already made its first step, as
  Python 3.12's eager tasks do: `asyncio.current_task()` and the context are the task's from the
  first line on, so code that remembers its task across a wait (anyio cancel scopes in httpx,
  `asyncio.timeout`) works. For user code: bots' handlers and jobs.

Most handler calls (an echo, a lookup in the chat's state) finish without awaiting anything real, and
wrapping each of them in an `asyncio.Task` with `wait_for` costs more than the handler. `run_eagerly`
drives the coroutine on the caller's stack until its first real suspension: when it finishes there,
no task, timer or context switch was paid for; when it does wait (an HTTP call), the returned
`Continuation` takes over exactly where it stopped and can be awaited inside a task, with a timeout,
like the coroutine itself. (Python 3.12's eager task factory does the same for whole tasks.)

    done, value = run_eagerly(handler(ctx))
    if not done:
        value = await asyncio.wait_for(value, timeout)   # in a task of its own
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio.tasks import _enter_task, _leave_task  # what 3.12's eager tasks use to swap the current task
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Generic, TypeVar, cast

__all__ = ["Continuation", "run_eagerly", "start_task_eagerly"]

T = TypeVar("T")


class Continuation(Generic[T]):
    """The rest of a coroutine that suspended during `run_eagerly`: await it (once) to finish it."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, T]:
        coro, yielded = self._coro, self._yielded
        if yielded is not None:
            # run_eagerly cleared it (see there); the task that takes the future over expects it set.
            yielded._asyncio_future_blocking = True
        while True:
            try:
                # Hand what the coroutine waits on (a future, or None for a bare yield) to the task
                # awaiting us, exactly as the coroutine would have; the task resumes us when it is done.
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task: cancellation, timeouts
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return cast(T, stop.value)
                continue
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return cast(T, stop.value)

    def close(self) -> None:
        """Abandon it without awaiting (no 'never awaited' warning, `finally` blocks run)."""
        self._coro.close()


def run_eagerly(awaitable: Awaitable[T]) -> tuple[bool, T | Awaitable[T]]:
    """(True, result) when the coroutine finished without suspending; else (False, what is left of it,
    to await). Any other awaitable (a future) is returned as it is, unstarted.

    An exception raised before the first suspension propagates from here.
    """
    if not isinstance(awaitable, Coroutine):
        return False, awaitable
    coro = cast(Coroutine[Any, Any, T], awaitable)
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return True, cast(T, stop.value)
    if yielded is not None:
        # A task clears this flag as soon as an awaited future reaches it. Until a task takes this one
        # over, other coroutines may await the same future, and asyncio refuses a future still flagged.
        yielded._asyncio_future_blocking = False
    return False, Continuation(coro, yielded)


class _Rest:
    __slots__ = ("continuation",)

    def __init__(self) -> None:
        self.continuation: Continuation[Any] | None = None


async def _resume(rest: _Rest) -> Any:
    if rest.continuation is None:  # finished during the eager start: its result was handed over then
        return None
    return await rest.continuation


def start_task_eagerly(coro: Coroutine[Any, Any, T]) -> tuple[bool, T | None, asyncio.Task[Any] | None]:
    """Run `coro` as a new task, its first step right now: (True, result, None) when it finished
    without waiting (an exception it raised propagates from here), else (False, None, the task).

    Must be called from a running event loop (inside a task or a callback).
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    rest = _Rest()
    task = loop.create_task(_resume(rest), context=context)
    outer = asyncio.current_task(loop)
    if outer is not None:
        _leave_task(loop, outer)
    _enter_task(loop, task)
    try:
        try:
            yielded = context.run(coro.send, None)
        except StopIteration as stop:
            return True, cast(T, stop.value), None
        if yielded is not None:
            yielded._asyncio_future_blocking = False  # the task takes it over at its first step
        rest.continuation = Continuation(coro, yielded)
        return False, None, task
    finally:
        _leave_task(loop, task)
        if outer is not None:
            _enter_task(loop, outer)
