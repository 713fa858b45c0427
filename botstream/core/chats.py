"""Per-chat ordered execution, chats concurrent, without a task per event.

A worker's events of one chat must run strictly one after another; events of different chats may
run at once, so one slow chat (an LLM call, a platform's rate limit) holds back only itself.
`ChatRunner.submit(chat, event)` drives the chat at once, on the caller's stack: when its step
finishes without waiting (most streams steps), nothing else was paid for. Only a chat whose step has
to wait gets a task, which finishes that step and then the events of the chat that arrived
meanwhile, in order ("busy" chats; their new events queue behind).

`done(event)` is called exactly once per finished event, in chat order. A step is expected to
record its own failures; an exception escaping it is logged and counts as done, so one bug cannot
stall a partition. A step that raises `Abandoned` (its generation ended: a rebalance or a stop began)
is not done: `given_back(event)` is called and its offset is never committed by this worker.

Two ways to drive a chat (`own_task`):
- False: the chat runs on the caller's task until it waits, then goes on in a new task. Only for the
  project's own steps, which do not depend on which task runs them (user code inside a step is
  started as a task of its own, see `botstream.core.eager.start_task_eagerly`);
- True: the chat runs as a task of its own from its first line (an eagerly started task), for steps
  that hold something tied to their task across a wait (httpx's anyio cancel scopes in the sinks).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar, cast

from botstream.core.eager import run_eagerly, start_task_eagerly
from botstream.core.generation import Abandoned

__all__ = ["ChatRunner"]

log = logging.getLogger(__name__)
E = TypeVar("E")
Step = Callable[[E], Coroutine[Any, Any, None]]


class ChatRunner(Generic[E]):
    def __init__(self, step: Step[E], done: Callable[[E], None], *, max_busy: int = 64, own_task: bool = False,
                 given_back: Callable[[E], None] | None = None) -> None:
        self._step = step
        self._done = done
        self._given_back = given_back or (lambda _event: None)
        self.max_busy = max_busy
        self.own_task = own_task
        self._chats: dict[str, deque[E]] = {}  # chats being driven: their queued events
        self._tasks: set[asyncio.Task[Any]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> int:
        """Chats waiting on something (each has a task)."""
        return len(self._tasks)

    def waiting(self, chat: str) -> list[E]:
        """Events of `chat` queued behind the step it is running now."""
        queue = self._chats.get(chat)
        return list(queue) if queue else []

    def submit(self, chat: str, event: E) -> None:
        queue = self._chats.get(chat)
        if queue is not None:
            queue.append(event)
            return
        queue = self._chats[chat] = deque()
        drive = self._drive(chat, event, queue)
        if self.own_task:
            finished, _, task = start_task_eagerly(drive)
            if finished:
                return
            assert task is not None
        else:
            finished, rest = run_eagerly(drive)
            if finished:
                return
            task = asyncio.get_running_loop().create_task(_await(cast(Awaitable[None], rest)), name=f"chat:{chat}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._idle.clear()
        if len(self._tasks) >= self.max_busy:
            self._room.clear()

    async def wait_for_room(self) -> None:
        """Wait while `max_busy` chats are waiting on something (backpressure for the intake)."""
        if not self._room.is_set():
            await self._room.wait()

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until no chat is busy; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def cancel_all(self) -> None:
        """Stop every waiting step (after a failed drain): their events are neither done nor acked."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals -------------------------------------------------------------------------------------
    async def _drive(self, chat: str, event: E, queue: deque[E]) -> None:
        try:
            while True:
                try:
                    await self._step(event)
                except Abandoned:
                    self._given_back(event)
                except Exception:  # noqa: BLE001 - the last guard: the step records its own failures
                    log.exception("event step raised; counted as done so the partition keeps moving",
                                  extra={"chat_key": chat})
                    self._done(event)
                else:
                    self._done(event)
                if not queue:
                    return
                event = queue.popleft()
        finally:
            if self._chats.get(chat) is queue:
                del self._chats[chat]

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if len(self._tasks) < self.max_busy:
            self._room.set()
        if not self._tasks:
            self._idle.set()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
