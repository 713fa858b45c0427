"""The one RetryPolicy and the one Retry-After parser (botstream.core.retry)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botstream.core.retry import RetryPolicy, parse_retry_after

NOW = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), ("0", 0.0), (" 120 ", 120.0), ("0.25", 0.25), ("1.337", 1.337),
    ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ("Wednesday, 21-Oct-15 07:28:10 GMT", 10.0),  # RFC 850, an obsolete form HTTP still allows
    ("Wed Oct 21 07:28:10 2015", 10.0),  # asctime, the other obsolete form
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: now
])
def test_delta_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "-1", "nan", "inf", "1e999", "Wed, 32 Oct 2015 x"])
def test_absent_or_unreadable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_a_date_needs_a_clock_and_seconds_do_not() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT") is None
    assert parse_retry_after("7") == 7.0


def test_the_retry_chain_shape_one_delay_per_level_then_the_last_again() -> None:
    policy = RetryPolicy(delays_s=(5.0, 30.0, 300.0), max_attempts=5)
    assert [policy.nominal_delay(n) for n in range(1, 6)] == [5.0, 30.0, 300.0, 300.0, 300.0]
    assert (policy.levels, policy.retries) == (3, 4)
    assert [policy.exhausted(n) for n in (1, 4, 5, 6)] == [False, False, True, True]


def test_the_exponential_shape_grows_past_the_listed_delay() -> None:
    policy = RetryPolicy.exponential(retries=3, base_s=0.25, growth=4.0, max_wait_s=30.0)
    assert [policy.nominal_delay(n) for n in (1, 2, 3, 4)] == [0.25, 1.0, 4.0, 16.0]
    assert (policy.max_attempts, policy.full_jitter) == (4, True)
    assert policy.too_long(30.5) and not policy.too_long(30.0)
    assert not RetryPolicy().too_long(1e12)  # no limit unless one is set


@given(seed=st.integers(0, 2**32), retry=st.integers(1, 8))
def test_proportional_jitter_keeps_each_delay_within_its_band(seed: int, retry: int) -> None:
    policy = RetryPolicy(delays_s=(5.0, 30.0), jitter=0.1)
    nominal = policy.nominal_delay(retry)
    assert nominal * 0.9 <= policy.backoff(retry, random.Random(seed)) <= nominal * 1.1


@given(seed=st.integers(0, 2**32), retry=st.integers(1, 6))
def test_full_jitter_is_anywhere_below_the_ceiling(seed: int, retry: int) -> None:
    policy = RetryPolicy.exponential(retries=6, base_s=0.5)
    assert 0.0 <= policy.backoff(retry, random.Random(seed)) < policy.nominal_delay(retry)


@given(seed=st.integers(0, 2**32), wait=st.floats(0, 1e4))
def test_a_servers_wait_is_only_ever_lengthened(seed: int, wait: float) -> None:
    assert wait <= RetryPolicy(jitter=0.1).lengthened(wait, random.Random(seed)) <= wait * 1.1


@pytest.mark.parametrize("kwargs", [{"delays_s": ()}, {"delays_s": (1.0, -1.0)}, {"max_attempts": 0},
                                    {"jitter": 1.0}, {"jitter": -0.1}, {"growth": 0.5}, {"max_wait_s": -1.0}])
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retries_count_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().nominal_delay(0)
