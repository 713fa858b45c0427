"""One lock per chat, shared by the agents of `replies` and of every retry level.

Each lane runs its chats in order (`botstream.core.chats.ChatRunner`), but a chat's new replies and its
retry records are in different lanes, so both may act on one chat at once. The hold/release state of a
chat is read-modify-write, and a chat must have one send in flight at a time (order), so every step
that touches a chat runs under its lock. Locks exist only while someone holds or waits for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["ChatLocks"]


class ChatLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, chat: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(chat, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[chat] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock_now, users_now = self._locks[chat]
            if users_now <= 1:
                del self._locks[chat]
            else:
                self._locks[chat] = (lock_now, users_now - 1)
