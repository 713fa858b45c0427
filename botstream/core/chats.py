"""Per-chat ordered execution, chats concurrent, without a task per event.

A worker's events of one chat must run strictly one after another; events of different chats may
run at once, so one slow chat (an LLM call) holds back only itself. `ChatRunner.submit(chat, event)`
runs the event's step at once, on the caller's stack (`botstream.core.eager`); only when the step
has to wait for something does the chat get a task of its own, which finishes that step and then
the chat's events that arrived meanwhile, in order. A chat with a task is "busy": its new events
queue behind it. `done(event)` is called exactly once per event, in chat order, when its step ended
(normally or not: a step is expected to record its own failures; an exception escaping it is logged
and counts as done, so one bug cannot stall a partition).

The runner knows nothing of offsets: the caller acknowledges in partition order (`OffsetTracker`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from botstream.core.eager import Continuation, run_eagerly

__all__ = ["ChatRunner"]

log = logging.getLogger(__name__)
E = TypeVar("E")
Step = Callable[[E], Coroutine[Any, Any, None]]


class ChatRunner(Generic[E]):
    def __init__(self, step: Step[E], done: Callable[[E], None], *, max_busy: int = 64) -> None:
        self._step = step
        self._done = done
        self.max_busy = max_busy
        self._busy: dict[str, deque[E]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> int:
        """Chats with a step waiting on something (each has a task)."""
        return len(self._busy)

    def waiting(self, chat: str) -> list[E]:
        """Events of `chat` queued behind the step it is waiting on."""
        queue = self._busy.get(chat)
        return list(queue) if queue else []

    def submit(self, chat: str, event: E) -> None:
        queue = self._busy.get(chat)
        if queue is not None:
            queue.append(event)
            return
        rest = self._start(chat, event)
        if rest is not None:
            self._busy[chat] = deque()
            self._idle.clear()
            if len(self._busy) >= self.max_busy:
                self._room.clear()
            task = asyncio.get_running_loop().create_task(self._continue(chat, event, rest), name=f"chat:{chat}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

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
        """Stop every waiting step (shutdown after a failed drain): their events are not done."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._busy.clear()
        self._room.set()
        self._idle.set()

    # -- internals -------------------------------------------------------------------------------------
    def _start(self, chat: str, event: E) -> Continuation[None] | None:
        """Run a step eagerly; its continuation when it has to wait, else None (and it is done)."""
        try:
            finished, rest = run_eagerly(self._step(event))
        except Exception:  # noqa: BLE001 - the last guard: the step records its own failures
            log.exception("event step raised; counted as done so the partition keeps moving",
                          extra={"chat_key": chat})
            finished, rest = True, None
        if finished:
            self._done(event)
            return None
        assert isinstance(rest, Continuation)
        return rest

    async def _continue(self, chat: str, event: E, rest: Continuation[None]) -> None:
        queue = self._busy[chat]
        try:
            while True:
                try:
                    await rest
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001
                    log.exception("event step raised; counted as done so the partition keeps moving",
                                  extra={"chat_key": chat})
                self._done(event)
                nxt: Continuation[None] | None = None
                while queue and nxt is None:
                    event = queue.popleft()
                    nxt = self._start(chat, event)
                if nxt is None:
                    return
                rest = nxt
        finally:
            if self._busy.get(chat) is queue:
                del self._busy[chat]
            if len(self._busy) < self.max_busy:
                self._room.set()
            if not self._busy:
                self._idle.set()
