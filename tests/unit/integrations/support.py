"""Test doubles for integrations without a network: a clock the test moves (sleeping advances it)
and upstreams written as plain functions behind httpx.MockTransport."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from prometheus_client import REGISTRY

from botstream.core.bots import BreakerSettings, IntegrationConfig
from botstream.streams.integrations import Integration


class FakeClock:
    """Monotonic seconds that move only when told, or when code sleeps through `sleep`."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def config(**overrides: Any) -> IntegrationConfig:
    breaker = overrides.pop("breaker", None)
    base = IntegrationConfig(name=overrides.pop("name", "llm"), base_url="http://upstream.test/api")
    cfg = dataclasses.replace(base, **overrides)
    return dataclasses.replace(cfg, breaker=BreakerSettings(**breaker)) if breaker else cfg


Upstream = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


class Recorder:
    """An upstream function answering from a script (the last answer repeats), recording requests."""

    def __init__(self, *answers: int | tuple[int, dict[str, str]] | BaseException) -> None:
        self.answers = list(answers) or [200]
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = self.answers[min(len(self.requests), len(self.answers) - 1)]
        self.requests.append(request)
        if isinstance(answer, BaseException):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return httpx.Response(status, headers=headers, json={"answer": "42", "status": status})


def integration(upstream: Upstream, clock: FakeClock | None = None, *, seed: int = 7, bot: str = "b",
                **overrides: Any) -> Integration:
    clock = clock or FakeClock()
    return Integration(bot, config(**overrides), transport=httpx.MockTransport(upstream), clock=clock,
                       wall_clock=lambda: 1_700_000_000.0, sleep=clock.sleep, rng=random.Random(seed))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
