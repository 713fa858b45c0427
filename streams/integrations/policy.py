"""The decisions of a guarded call, as pure functions: time and randomness are passed in.

- `slot_wait_budget`: how long a call may queue for a concurrency slot — bounded, and never past the
  handler's deadline, so a saturated integration answers "busy" instead of eating the handler's time.
- `attempt_timeout`: the hard timeout of one attempt, cut to what is left before the deadline.
- `classify_status` / `classify_exception`: what an attempt came to — ok, rejected (a 4xx other than
  429: retrying cannot help) or retryable (connection errors, timeouts, 5xx, 429).
- `integration_policy`: the integration's `botstream.core.retry.RetryPolicy` — `retries` retries
  with full-jitter backoff (uniform in [0, backoff_s · 4^n), the AWS "full jitter" scheme: callers
  that failed together do not retry together), and the longest Retry-After worth waiting for.
- `next_step`: retry after that backoff, at least the server's Retry-After, and only if the attempt
  after the wait still fits before the deadline.

The breaker is `botstream.core.breaker.CircuitBreaker` (also pure); the shell (`botstream.streams.integrations.client`)
does the waiting, sending and logging.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

import httpx

from botstream.core.bots import IntegrationConfig
from botstream.core.retry import RetryPolicy, parse_retry_after

__all__ = ["MIN_ATTEMPT_S", "AttemptResult", "Retry", "Stop", "attempt_timeout", "classify_exception",
           "classify_status", "integration_policy", "next_step", "slot_wait_budget", "time_left"]

# Transport failures worth another attempt: the request may not have reached the server, or the
# answer was lost. The other TransportErrors (unsupported protocol, invalid request) repeat identically.
RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


BACKOFF_GROWTH = 4.0  # backoff ceilings backoff_s, x4, x16: 0.25 s, 1 s, 4 s with the defaults
MIN_ATTEMPT_S = 0.05  # an attempt that would have less time than this before the deadline is not made


def integration_policy(config: IntegrationConfig, retries: int | None = None) -> RetryPolicy:
    """The retry schedule of one integration (`retries` overrides the configured number for one call)."""
    return RetryPolicy.exponential(config.retries if retries is None else retries, config.backoff_s,
                                   BACKOFF_GROWTH, max_wait_s=config.max_retry_after_s)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to. `reason` is short and safe to log: "200", "503", "timeout", "ConnectError"."""

    kind: Literal["ok", "rejected", "retryable"]
    reason: str
    status: int | None = None
    retry_after_s: float | None = None
    timed_out: bool = False

    @property
    def api_failure(self) -> bool:
        """Counts against the breaker (`botstream.core.breaker.counts_as_failure`): only failures of
        the API do; a 429 is the API working, and a 4xx is about one request."""
        return self.kind == "retryable" and self.status != 429


@dataclass(frozen=True)
class Retry:
    delay_s: float
    retry: int  # 1 for the first retry


@dataclass(frozen=True)
class Stop:
    reason: str  # "ok", "not retryable", "retries exhausted", "deadline", "retry-after too long"


def time_left(now: float, deadline: float | None) -> float:
    return math.inf if deadline is None else deadline - now


def slot_wait_budget(now: float, deadline: float | None, slot_wait_s: float) -> float:
    """Seconds a call may wait for a free slot: `slot_wait_s`, cut to the time before the deadline."""
    return max(0.0, min(slot_wait_s, time_left(now, deadline)))


def attempt_timeout(now: float, deadline: float | None, timeout_s: float) -> float:
    """The hard timeout of an attempt starting now (<= 0: no time is left)."""
    return min(timeout_s, time_left(now, deadline))


def classify_status(status: int, retry_after: str | None = None, now_wall: float = 0.0) -> AttemptResult:
    if status < 400:
        return AttemptResult("ok", str(status), status)
    if status == 429 or status >= 500:
        return AttemptResult("retryable", str(status), status, parse_retry_after(retry_after, now_wall))
    return AttemptResult("rejected", str(status), status)


def classify_exception(exc: BaseException) -> AttemptResult:
    """A failed attempt: our own hard timeout (TimeoutError), httpx's timeouts and transport errors."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return AttemptResult("retryable", "timeout", timed_out=True)
    if isinstance(exc, RETRYABLE_TRANSPORT):
        return AttemptResult("retryable", type(exc).__name__)
    return AttemptResult("rejected", type(exc).__name__)


def next_step(policy: RetryPolicy, result: AttemptResult, retries_done: int, now: float,
              deadline: float | None, rng: random.Random) -> Retry | Stop:
    """After an attempt: stop (success, a rejection, no retries or time left) or retry after a delay.

    Draws one number from `rng` whenever a retry is considered, so a seeded sequence replays.
    """
    if result.kind == "ok":
        return Stop("ok")
    if result.kind == "rejected":
        return Stop("not retryable")
    if policy.exhausted(retries_done + 1):
        return Stop("retries exhausted")
    delay = policy.backoff(retries_done + 1, rng)
    if result.retry_after_s is not None:
        if policy.too_long(result.retry_after_s):
            return Stop("retry-after too long")
        delay = max(delay, result.retry_after_s)
    if time_left(now + delay, deadline) < MIN_ATTEMPT_S:
        return Stop("deadline")
    return Retry(delay, retries_done + 1)
