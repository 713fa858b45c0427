"""Rate-limit arithmetic against a fake clock (plain floats)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botstream.sandbox.limits import FixedWindow, SlidingWindowLog, TokenBucket, acquire_all, whole_seconds


def drain(limiter: TokenBucket | SlidingWindowLog | FixedWindow, now: float) -> int:
    """Take until refused at `now`; returns how many were allowed."""
    n = 0
    while limiter.wait(now) == 0.0:
        limiter.take(now)
        n += 1
    return n


def test_token_bucket_allows_burst_then_states_exact_wait() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    assert drain(bucket, 100.0) == 3
    assert bucket.wait(100.0) == pytest.approx(1.0)
    assert bucket.wait(100.4) == pytest.approx(0.6)
    assert bucket.wait(101.0) == 0.0
    bucket.take(101.0)
    assert bucket.wait(101.0) == pytest.approx(1.0)


def test_token_bucket_refills_to_burst_not_beyond() -> None:
    bucket = TokenBucket(rate=10.0, burst=2)
    drain(bucket, 0.0)
    assert drain(bucket, 1_000.0) == 2


def test_token_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    bucket.take(10.0)
    assert bucket.wait(9.0) == pytest.approx(1.0)
    assert bucket.wait(11.0) == 0.0


@given(
    rate=st.floats(0.1, 100.0),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200),
)
def test_token_bucket_never_exceeds_burst_plus_refill(rate: float, burst: int, gaps: list[float]) -> None:
    bucket = TokenBucket(rate, burst)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        if bucket.wait(now) == 0.0:
            bucket.take(now)
            allowed += 1
    assert allowed <= burst + rate * now + 1e-6


def test_sliding_window_counts_any_window_exactly() -> None:
    window = SlidingWindowLog(limit=3, window=60.0)
    for t in (0.0, 10.0, 20.0):
        assert window.wait(t) == 0.0
        window.take(t)
    assert window.wait(30.0) == pytest.approx(30.0)  # the request at 0 leaves the window at 60
    assert window.wait(60.0) == 0.0
    window.take(60.0)
    assert window.wait(60.0) == pytest.approx(10.0)


def test_fixed_window_reports_remaining_and_reset_like_discord() -> None:
    window = FixedWindow(limit=5, period=5.0)
    assert window.remaining(0.0) == 5
    assert window.reset_after(0.0) == 5.0
    window.take(1.0)
    assert window.remaining(2.0) == 4
    assert window.reset_after(2.0) == pytest.approx(4.0)
    assert drain(window, 2.0) == 4
    assert window.wait(2.5) == pytest.approx(3.5)
    assert window.remaining(6.0) == 5  # window opened at 1.0 closed at 6.0


def test_acquire_all_charges_nothing_when_one_refuses() -> None:
    wide, narrow = TokenBucket(30.0, 30), TokenBucket(1.0, 1)
    narrow.take(0.0)
    refusal = acquire_all([("global", wide), ("per_chat", narrow)], 0.0)
    assert refusal is not None and refusal.kind == "per_chat"
    assert refusal.retry_after == pytest.approx(1.0)
    assert drain(wide, 0.0) == 30


def test_acquire_all_reports_the_longest_wait() -> None:
    short, long_ = TokenBucket(2.0, 1), TokenBucket(0.1, 1)
    short.take(0.0)
    long_.take(0.0)
    refusal = acquire_all([("a", short), ("b", long_)], 0.0)
    assert refusal is not None and refusal.kind == "b"
    assert refusal.retry_after == pytest.approx(10.0)


def test_acquire_all_charges_every_limiter_when_all_allow() -> None:
    a, b = TokenBucket(1.0, 1), SlidingWindowLog(1, 10.0)
    assert acquire_all([("a", a), ("b", b)], 0.0) is None
    assert a.wait(0.0) > 0 and b.wait(0.0) > 0


@pytest.mark.parametrize(("wait", "expected"), [(0.01, 1), (1.0, 1), (1.2, 2), (59.9999, 60)])
def test_whole_seconds_rounds_up_and_never_says_zero(wait: float, expected: int) -> None:
    assert whole_seconds(wait) == expected
