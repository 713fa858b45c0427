"""A circuit breaker for one API: stop calling an API that keeps failing, probe, resume.

Without it, a platform outage turns every reply into a timeout that holds a connection and then a
retry hop; with it, the sinks send replies down the retry chain at once (due no sooner than the next
probe), and an integration call fails fast with `IntegrationUnavailable`.

    closed --(>= min_calls in window_s, failure share >= failure_ratio)--> open
    open --(open_s elapsed, on allow())--> half_open --(probes all succeed)--> closed
                                           half_open --(a probe fails)--> open

Time is passed in; the state changes only inside `allow` and `record`. What counts as a failure is
the caller's vocabulary, not the breaker's: a result says so itself with a true `api_failure`
attribute (the sinks' `Retryable` outcome does), read by `counts_as_failure`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

State = Literal["closed", "open", "half_open"]


def counts_as_failure(result: object) -> bool:
    """Does this result of a call count against the API's health? Only failures of the API do (a
    5xx, a timeout): a 429 is the API working, and a 4xx is about one request. The result says
    which it is with its `api_failure` attribute; anything without one is no failure."""
    return bool(getattr(result, "api_failure", False))


class CircuitBreaker:
    def __init__(self, failure_ratio: float = 0.5, min_calls: int = 20, window_s: float = 30.0,
                 open_s: float = 10.0, half_open_probes: int = 1) -> None:
        if not 0 < failure_ratio <= 1 or min_calls < 1 or window_s <= 0 or open_s < 0 or half_open_probes < 1:
            raise ValueError("failure_ratio in (0, 1], min_calls >= 1, window_s > 0, open_s >= 0, "
                             "half_open_probes >= 1")
        self.failure_ratio = failure_ratio
        self.min_calls = min_calls
        self.window_s = window_s
        self.open_s = open_s
        self.half_open_probes = half_open_probes
        self._state: State = "closed"
        self._calls: deque[tuple[float, bool]] = deque()  # (time, success) within the window
        self._failures = 0
        self._opened_at = -math.inf
        self._probes_sent = 0
        self._probes_passed = 0

    @property
    def state(self) -> State:
        return self._state

    def allow(self, now: float) -> bool:
        """May a request go now? In half-open, True only for the probes."""
        if self._state == "open":
            if now < self._opened_at + self.open_s:
                return False
            self._state, self._probes_sent, self._probes_passed = "half_open", 0, 0
        if self._state == "half_open":
            if self._probes_sent >= self.half_open_probes:
                return False
            self._probes_sent += 1
        return True

    def retry_in(self, now: float) -> float:
        """Seconds until `allow` can say True again (0 when it can now)."""
        if self._state == "open":
            return max(0.0, self._opened_at + self.open_s - now)
        return 0.0

    def record(self, success: bool, now: float) -> None:
        """The result of a request `allow` let through."""
        if self._state == "open":
            return  # a straggler sent before the breaker opened says nothing new
        if self._state == "half_open":
            if not success:
                self._open(now)
                return
            self._probes_passed += 1
            if self._probes_passed >= self.half_open_probes:
                self._state = "closed"
                self._calls.clear()
                self._failures = 0
            return
        self._calls.append((now, success))
        self._failures += not success
        self._prune(now)
        if len(self._calls) >= self.min_calls and self._failures >= self.failure_ratio * len(self._calls):
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._calls.clear()
        self._failures = 0

    def _prune(self, now: float) -> None:
        while self._calls and self._calls[0][0] <= now - self.window_s:
            _, success = self._calls.popleft()
            self._failures -= not success
