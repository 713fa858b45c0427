"""A real sandbox (its generic upstream) per test, and integrations pointed at it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from botstream.sandbox import SandboxConfig, SandboxServer
from botstream.streams.integrations import Integration
from tests.unit.integrations.support import config


class RecordingSleep:
    """asyncio.sleep that remembers what the integration decided to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(seconds)


@pytest.fixture
def upstream() -> Iterator[SandboxServer]:
    """The sandbox on a free port, real clock and real sleeps: latency and hangs take real time."""
    with SandboxServer(SandboxConfig().with_limits_disabled()) as server:
        yield server


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def make_integration(upstream: SandboxServer, sleeps: RecordingSleep) -> AsyncIterator[Callable[..., Integration]]:
    made: list[Integration] = []

    def make(name: str = "llm", **overrides: Any) -> Integration:
        cfg = config(name=name, base_url=f"{upstream.base_url}/upstream/{name}", **overrides)
        integration = Integration(f"it-{len(made)}-{id(made)}", cfg, sleep=sleeps, rng=random.Random(11))
        made.append(integration)
        return integration

    yield make
    for integration in made:
        await integration.aclose()
