"""Circuit breaker transitions on a fake clock."""

from __future__ import annotations

import pytest

from botstream.core.breaker import CircuitBreaker, counts_as_failure
from botstream.sinks.outcomes import Delivered, Permanent, Retryable, Wait


def feed(breaker: CircuitBreaker, results: list[bool], now: float) -> None:
    for ok in results:
        assert breaker.allow(now)
        breaker.record(ok, now)


def test_stays_closed_below_min_calls() -> None:
    breaker = CircuitBreaker(min_calls=20)
    feed(breaker, [False] * 19, 0.0)
    assert breaker.state == "closed"


def test_stays_closed_below_failure_ratio() -> None:
    breaker = CircuitBreaker(failure_ratio=0.5, min_calls=20)
    feed(breaker, [True, False] * 9 + [True, True], 0.0)
    assert breaker.state == "closed"


def test_opens_on_sustained_failures_and_refuses() -> None:
    breaker = CircuitBreaker(min_calls=20, open_s=10.0)
    feed(breaker, [True] * 10 + [False] * 10, 0.0)
    assert breaker.state == "open"
    assert not breaker.allow(5.0)
    assert breaker.retry_in(5.0) == pytest.approx(5.0)


def test_old_failures_leave_the_window() -> None:
    breaker = CircuitBreaker(min_calls=4, window_s=30.0)
    feed(breaker, [False] * 3, 0.0)
    feed(breaker, [True] * 2, 31.0)
    breaker.record(False, 31.0)
    assert breaker.state == "closed"  # 1 failure of 3 calls in the window


def test_half_open_probe_success_closes() -> None:
    breaker = CircuitBreaker(min_calls=2, open_s=10.0)
    feed(breaker, [False, False], 0.0)
    assert breaker.allow(10.0)
    assert breaker.state == "half_open"
    assert not breaker.allow(10.0)  # one probe at a time
    breaker.record(True, 10.5)
    assert breaker.state == "closed"
    assert breaker.allow(10.5)


def test_half_open_probe_failure_reopens() -> None:
    breaker = CircuitBreaker(min_calls=2, open_s=10.0)
    feed(breaker, [False, False], 0.0)
    assert breaker.allow(10.0)
    breaker.record(False, 11.0)
    assert breaker.state == "open"
    assert not breaker.allow(20.0)
    assert breaker.allow(21.0)


def test_several_probes_must_all_pass() -> None:
    breaker = CircuitBreaker(min_calls=2, open_s=1.0, half_open_probes=2)
    feed(breaker, [False, False], 0.0)
    assert breaker.allow(1.0) and breaker.allow(1.0) and not breaker.allow(1.0)
    breaker.record(True, 1.1)
    assert breaker.state == "half_open"
    breaker.record(True, 1.2)
    assert breaker.state == "closed"


def test_stragglers_while_open_are_ignored() -> None:
    breaker = CircuitBreaker(min_calls=2, open_s=10.0)
    feed(breaker, [False, False], 0.0)
    breaker.record(True, 1.0)
    assert breaker.state == "open"


def test_what_counts_as_failure() -> None:
    assert counts_as_failure(Retryable("HTTP 503", 503))
    assert not counts_as_failure(Wait(1.0, "chat"))
    assert not counts_as_failure(Permanent("Forbidden", 403, "403"))
    assert not counts_as_failure(Delivered("1"))
