"""Scheduled jobs: when they run, and which chats they reach.

Every streams worker runs every job of its bots over the chats of the partitions it holds (together:
all chats, each once). Which chats: the `chats` index kept with the state (a row per chat of each bot,
written with the chat's first event and rebuilt at restore), never a scan of the conversations;
`job.chats(where)` keeps the chats whose bot state (`ctx.state` of the handlers) `where` is true for.
When: `@bot.every(seconds=...)` after each interval, `@bot.cron("0 9 * * *")` at the times the cron
expression names, in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from botstream.core.state.store import PartitionStore
from botstream.streams.handlers import Job
from botstream.streams.processor import CHATS, CONVERSATIONS

__all__ = ["Schedule", "chats_in"]

Where = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Schedule:
    """When a job runs next: `every` seconds, or at the times of a cron expression (UTC)."""

    every_s: float | None = None
    cron: str | None = None

    @classmethod
    def of(cls, job: Job) -> Schedule:
        return cls(every_s=job.seconds, cron=job.cron)

    def delay(self, now: float) -> float:
        """Seconds from unix time `now` to the next run."""
        if self.cron:
            start = datetime.fromtimestamp(now, UTC)
            return max(0.0, float(croniter(self.cron, start).get_next(float)) - now)
        if self.every_s:
            return self.every_s
        raise ValueError("a job needs `every` seconds or a cron expression")


def chats_in(stores: Iterable[PartitionStore], bot_id: str, where: Where | None = None) -> list[str]:
    """The chats of `bot_id` in these partitions' stores (what the last checkpoint wrote), those whose
    bot state `where` is true for when it is given."""
    prefix = f"{bot_id}\x00".encode()
    out: list[str] = []
    for store in stores:
        for key, _ in store.scan(CHATS, prefix):
            if not key.startswith(prefix):
                break
            chat = key[len(prefix):].decode()
            if where is not None:
                state = store.get(CONVERSATIONS, chat.encode())
                if not where((state or {}).get("bot_state") or {}):
                    continue
            out.append(chat)
    return out
