"""Rate-limit arithmetic, with the clock passed in.

Every limiter answers two questions about an instant `now` (seconds on any monotonic scale):
`wait(now)` — how long until one more request would be allowed (0.0 = allowed now) — and
`take(now)` — count one request. Keeping them apart lets `acquire_all` check several limits and
charge none of them when any refuses, as the platforms do: a refused request does not spend the
per-chat budget because the per-bot one was exhausted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "FixedWindow",
    "Limiter",
    "Refusal",
    "SlidingWindowLog",
    "TokenBucket",
    "acquire_all",
    "whole_seconds",
]


class Limiter(Protocol):
    def wait(self, now: float) -> float: ...

    def take(self, now: float) -> None: ...


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; starts full. Telegram/Slack/WhatsApp style."""

    __slots__ = ("rate", "burst", "tokens", "updated")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def wait(self, now: float) -> float:
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


class SlidingWindowLog:
    """At most `limit` requests in any `window` seconds (exact, keeps one timestamp per request).

    Used for Telegram's 20 msg/min per group, where a refilling bucket would allow 20 at once and
    then one every 3 s — more than the platform tolerates within a minute.
    """

    __slots__ = ("limit", "window", "stamps")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.stamps: deque[float] = deque()

    def _purge(self, now: float) -> None:
        horizon = now - self.window
        while self.stamps and self.stamps[0] <= horizon:
            self.stamps.popleft()

    def wait(self, now: float) -> float:
        self._purge(now)
        if len(self.stamps) < self.limit:
            return 0.0
        return self.stamps[0] + self.window - now

    def take(self, now: float) -> None:
        self._purge(now)
        self.stamps.append(now)


class FixedWindow:
    """`limit` requests per window that opens at the first request after the previous one closed.

    This is how Discord buckets behave and what its `X-RateLimit-Remaining` / `-Reset-After`
    headers describe, so the headers can be computed from this state exactly.
    """

    __slots__ = ("limit", "period", "start", "count")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.start: float | None = None
        self.count = 0

    def _roll(self, now: float) -> None:
        if self.start is None or now >= self.start + self.period:
            self.start = None
            self.count = 0

    def wait(self, now: float) -> float:
        self._roll(now)
        if self.count < self.limit or self.start is None:
            return 0.0
        return self.start + self.period - now

    def take(self, now: float) -> None:
        self._roll(now)
        if self.start is None:
            self.start = now
        self.count += 1

    def remaining(self, now: float) -> int:
        self._roll(now)
        return max(0, self.limit - self.count)

    def reset_after(self, now: float) -> float:
        """Seconds until the current window closes (a whole period if none is open)."""
        self._roll(now)
        return self.period if self.start is None else self.start + self.period - now


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which limit refused (`kind`, e.g. "per_chat") and the seconds until it would allow."""

    kind: str
    retry_after: float


def acquire_all(limiters: Sequence[tuple[str, Limiter]], now: float) -> Refusal | None:
    """Charge every limiter if all allow; otherwise charge none and report the longest wait."""
    worst: Refusal | None = None
    for kind, limiter in limiters:
        w = limiter.wait(now)
        if w > 0.0 and (worst is None or w > worst.retry_after):
            worst = Refusal(kind, w)
    if worst is not None:
        return worst
    for _, limiter in limiters:
        limiter.take(now)
    return None


def whole_seconds(wait: float) -> int:
    """Platforms that state waits in integer seconds round up and never say 0."""
    return max(1, math.ceil(wait - 1e-9))
