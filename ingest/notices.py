"""Warnings an operator should see, without a log line per request.

A refusal can be the sign of a misconfiguration (a wrong signing secret makes every webhook of a bot
fail with 401) or of trouble downstream (503: the broker did not acknowledge in time), and an attacker
or a platform retrying can produce thousands of them a second. Every one is counted in the metrics;
the log gets at most one warning per kind (status, platform, reason) per interval, which says how many
more of that kind there were since the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

DEFAULT_INTERVAL_S = 60.0


class RateLimitedWarnings:
    def __init__(self, logger: logging.Logger, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[tuple[Any, ...], float] = {}
        self._suppressed: dict[tuple[Any, ...], int] = {}

    def warn(self, kind: tuple[Any, ...], message: str, extra: Mapping[str, Any] | None = None) -> bool:
        """Log `message` unless a warning of the same `kind` was logged within the interval; True if logged."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message = f"{message} ({suppressed} more like it in the last {now - (last or now):.0f} s)"
        self.logger.warning(message, extra=dict(extra or {}))
        return True
