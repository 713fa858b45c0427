"""A clock tests can move: pass it as `clock=` to `build_app`/`SandboxServer` and call `advance`
instead of sleeping through a rate-limit window."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """Monotonic seconds that only change when told to. Safe to advance from another thread
    than the server's."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._now += seconds
            return self._now
