"""Test doubles for the sandbox server."""

from __future__ import annotations

import asyncio


class RecordingSleep:
    """Stands in for asyncio.sleep in the server: remembers each latency instead of waiting it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)
