"""Per-chat ordered concurrency with ordered acknowledgement (the I/O shell around OffsetTracker).

Events of one chat run strictly one after another; different chats run concurrently, bounded by a
semaphore; an event is acknowledged only when every earlier event of its partition is done. So a slow
chat (an LLM call) holds back only itself, and a crash can never commit past an unhandled update —
unlike faust's `concurrency=N`, which reorders and can commit past in-flight events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from botstream.core.ordering import OffsetTracker

log = logging.getLogger(__name__)
E = TypeVar("E")


class ChatScheduler(Generic[E]):
    """Feed events with `submit`; `process(event)` runs per chat in order; `ack(event)` is called in
    partition-offset order once an event and all earlier ones of its partition are done."""

    def __init__(self, process: Callable[[E], Awaitable[None]], ack: Callable[[E], Any], *,
                 chat_of: Callable[[E], str], position_of: Callable[[E], tuple[Hashable, int]],
                 max_chats: int = 64, max_in_flight: int = 2000) -> None:
        self._process = process
        self._ack = ack
        self._chat_of = chat_of
        self._position_of = position_of
        self._tracker: OffsetTracker[E] = OffsetTracker()
        self._queues: dict[str, deque[E]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_chats)
        self._room = asyncio.Semaphore(max_in_flight)
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._tracker.in_flight

    def waiting(self, chat: str) -> list[E]:
        """Events of `chat` queued behind the one running now (e.g. replies a sink may coalesce)."""
        queue = self._queues.get(chat)
        return list(queue)[1:] if queue else []

    async def submit(self, event: E) -> None:
        """Take an event; waits while `max_in_flight` events are unfinished (backpressure)."""
        await self._room.acquire()
        partition, offset = self._position_of(event)
        self._tracker.started(partition, offset, event)
        self._idle.clear()
        chat = self._chat_of(event)
        queue = self._queues.get(chat)
        if queue is not None:  # the chat's runner is active: it will get there in order
            queue.append(event)
            return
        self._queues[chat] = deque([event])
        task = asyncio.create_task(self._run_chat(chat), name=f"chat:{chat}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_chat(self, chat: str) -> None:
        queue = self._queues[chat]
        async with self._slots:
            while queue:
                event = queue[0]
                try:
                    await self._process(event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the processor records failures itself; this is the last guard
                    log.exception("event processing raised; acknowledging to keep the partition moving",
                                  extra={"chat_key": chat})
                queue.popleft()
                self._done(event)
        del self._queues[chat]

    def _done(self, event: E) -> None:
        partition, offset = self._position_of(event)
        for ready in self._tracker.complete(partition, offset):
            self._ack(ready)
            self._room.release()
        if self._tracker.in_flight == 0:
            self._idle.set()

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every submitted event is done (used at shutdown and rebalance)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def revoke(self, partitions: set[Hashable]) -> None:
        """Forget in-flight events of revoked partitions; their new owner handles them again."""
        for p in partitions:
            for _ in self._tracker.forget(p):
                self._room.release()
        if self._tracker.in_flight == 0:
            self._idle.set()
