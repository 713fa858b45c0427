"""Fixtures building engine drivers (see `driver.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from botstream.sandbox.config import SandboxConfig
from tests.unit.sandbox.driver import Driver


@pytest.fixture
def make_driver() -> Callable[..., Driver]:
    def make(config: SandboxConfig | None = None, **patch: Any) -> Driver:
        cfg = config or SandboxConfig()
        return Driver(cfg.merged(patch) if patch else cfg)

    return make


@pytest.fixture
def driver(make_driver: Callable[..., Driver]) -> Driver:
    return make_driver()
