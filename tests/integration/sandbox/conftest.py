"""Real sandbox servers on ephemeral ports, with a clock the test moves and a sleep it records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from botstream.sandbox import ManualClock, SandboxConfig, SandboxServer
from tests.integration.sandbox.support import RecordingSleep


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def start_sandbox(clock: ManualClock, sleeps: RecordingSleep) -> Iterator[Callable[..., SandboxServer]]:
    """start_sandbox(config=None, **merge_patch) -> a started SandboxServer, stopped after the test."""
    servers: list[SandboxServer] = []

    def start(config: SandboxConfig | None = None, **patch: Any) -> SandboxServer:
        cfg = config or SandboxConfig()
        server = SandboxServer(cfg.merged(patch) if patch else cfg, clock=clock, sleep=sleeps).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client
