"""Retrying, once for the whole project: how many attempts an operation gets, how long each retry
waits, and what a server's `Retry-After` asks for.

botstream retries in two places, with one `RetryPolicy` each:

- **the sinks' retry topic chain** (`botstream.sinks.retry.RetryChain`): a reply that failed waits on
  `replies.retry.<level>`, one level per delay (5 s, 30 s, 300 s by default), and goes to the DLQ
  when its attempts are used up. Its jitter is *proportional* (a delay d becomes d · U(0.9, 1.1)):
  full jitter would empty the meaning of the levels (a "300 s" retry could come back after 2 s).
- **integration calls** from bot handlers (`botstream.streams.integrations.policy`): exponential
  backoff with *full* jitter (uniform in [0, d), the AWS scheme: callers that failed together do
  not retry together), inside the handler's deadline; a `Retry-After` longer than `max_wait_s` ends
  the call instead of being waited out.

Pure: time and randomness are passed in, so every schedule is tested without a clock.
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass
from datetime import UTC

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often an operation is tried, and how long each retry waits.

    - `delays_s[n - 1]` is the nominal wait before retry n (1 for the first retry); past the last
      one, each wait is `growth` times the one before (growth 1: the last delay repeats).
    - `max_attempts` counts every attempt, the first one included.
    - `jitter`: the nominal wait d becomes d · U(1 - jitter, 1 + jitter); with `full_jitter`,
      U(0, d) instead.
    - `max_wait_s`: a wait a server asks for (Retry-After) above this is not waited out.
    """

    delays_s: tuple[float, ...] = (5.0, 30.0, 300.0)
    max_attempts: int = 5
    growth: float = 1.0
    jitter: float = 0.1
    full_jitter: bool = False
    max_wait_s: float = math.inf

    def __post_init__(self) -> None:
        if not self.delays_s or any(d < 0 for d in self.delays_s):
            raise ValueError(f"delays_s must be non-empty and non-negative, not {self.delays_s}")
        if self.max_attempts < 1 or not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"max_attempts must be >= 1 and jitter in [0, 1), not "
                             f"{self.max_attempts}, {self.jitter}")
        if self.growth < 1.0 or self.max_wait_s < 0:
            raise ValueError(f"growth must be >= 1 and max_wait_s >= 0, not {self.growth}, {self.max_wait_s}")

    @classmethod
    def exponential(cls, retries: int, base_s: float, growth: float = 4.0, *,
                    max_wait_s: float = math.inf) -> RetryPolicy:
        """`retries` retries after the first attempt; retry n waits U(0, base_s · growth^(n-1))."""
        return cls(delays_s=(base_s,), max_attempts=retries + 1, growth=growth, jitter=0.0, full_jitter=True,
                   max_wait_s=max_wait_s)

    @property
    def retries(self) -> int:
        """Retries after the first attempt."""
        return self.max_attempts - 1

    @property
    def levels(self) -> int:
        """How many distinct delays are listed (the retry chain has one topic per delay)."""
        return len(self.delays_s)

    def exhausted(self, attempts: int) -> bool:
        """True when `attempts` attempts have been made and none is left."""
        return attempts >= self.max_attempts

    def nominal_delay(self, retry: int) -> float:
        """The wait before retry `retry` (1-based), before jitter."""
        if retry < 1:
            raise ValueError(f"retries count from 1, not {retry}")
        listed = len(self.delays_s)
        if retry <= listed:
            return self.delays_s[retry - 1]
        return self.delays_s[-1] * self.growth ** (retry - listed)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before retry `retry` (1-based). Draws one number from `rng`."""
        nominal = self.nominal_delay(retry)
        if self.full_jitter:
            return rng.random() * nominal
        return nominal * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def lengthened(self, wait_s: float, rng: random.Random) -> float:
        """A wait a server asked for, spread only upward (U(1, 1 + jitter)): a retry before the wait is
        over would be refused again. Draws one number from `rng`."""
        return wait_s * rng.uniform(1.0, 1.0 + self.jitter)

    def too_long(self, wait_s: float) -> bool:
        """A server's wait this long is not waited out (`max_wait_s`)."""
        return wait_s > self.max_wait_s


def parse_retry_after(value: str | None, now_wall: float | None = None) -> float | None:
    """Seconds to wait, from a `Retry-After` header value: delta-seconds (decimals accepted: Discord
    and others send them) or an HTTP date (RFC 9110 §10.2.3), measured from `now_wall` (unix seconds).

    None when the value is absent or unreadable, or when it is a date and no `now_wall` is given (a
    date needs a clock); callers then use their own default. A date in the past means now: 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, now_wall)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _seconds_until(http_date: str, now_wall: float | None) -> float | None:
    if now_wall is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_wall)
