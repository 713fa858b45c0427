"""The pure decisions of a guarded call: slot waits, attempt timeouts, classification, retries."""

from __future__ import annotations

import random

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from botstream.core.bots import IntegrationConfig
from botstream.core.breaker import counts_as_failure
from botstream.core.retry import RetryPolicy
from botstream.streams.integrations.policy import (
    MIN_ATTEMPT_S,
    AttemptResult,
    Retry,
    Stop,
    attempt_timeout,
    classify_exception,
    classify_status,
    integration_policy,
    next_step,
    slot_wait_budget,
)

FAILED_503 = AttemptResult("retryable", "503", 503)


def policy_of(**config: float) -> RetryPolicy:
    """The retry policy of an integration declared with `config` (retries, backoff_s, max_retry_after_s)."""
    return integration_policy(IntegrationConfig("llm", "http://upstream", **config))  # type: ignore[arg-type]


def test_slot_wait_is_bounded_by_the_setting_and_by_the_deadline() -> None:
    assert slot_wait_budget(100.0, None, 1.0) == 1.0
    assert slot_wait_budget(100.0, 105.0, 1.0) == 1.0
    assert slot_wait_budget(100.0, 100.25, 1.0) == 0.25
    assert slot_wait_budget(100.0, 99.0, 1.0) == 0.0  # past the deadline: no wait at all
    assert slot_wait_budget(100.0, None, 0.0) == 0.0  # slot_wait_s = 0: take a free slot or be busy


def test_attempt_timeout_is_cut_to_the_deadline() -> None:
    assert attempt_timeout(100.0, None, 5.0) == 5.0
    assert attempt_timeout(100.0, 102.0, 5.0) == 2.0
    assert attempt_timeout(100.0, 99.5, 5.0) == -0.5


@pytest.mark.parametrize("status, kind", [(200, "ok"), (204, "ok"), (302, "ok"), (400, "rejected"),
                                          (401, "rejected"), (404, "rejected"), (409, "rejected"),
                                          (422, "rejected"), (429, "retryable"), (500, "retryable"),
                                          (503, "retryable"), (599, "retryable")])
def test_status_classification(status: int, kind: str) -> None:
    assert classify_status(status).kind == kind


def test_only_api_failures_count_for_the_breaker() -> None:
    assert counts_as_failure(classify_status(503)) and counts_as_failure(classify_exception(httpx.ConnectError("x")))
    assert not counts_as_failure(classify_status(429))  # throttling: the API works
    assert not counts_as_failure(classify_status(404)) and not counts_as_failure(classify_status(200))


def test_exception_classification() -> None:
    assert classify_exception(TimeoutError()).timed_out
    assert classify_exception(httpx.ReadTimeout("x")).timed_out
    for exc in (httpx.ConnectError("x"), httpx.ReadError("x"), httpx.RemoteProtocolError("x")):
        assert classify_exception(exc).kind == "retryable"
    assert classify_exception(httpx.UnsupportedProtocol("x")).kind == "rejected"


def test_retry_after_is_read_in_both_forms() -> None:
    assert classify_status(429, "2", 0.0).retry_after_s == 2.0
    assert classify_status(503, "Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0).retry_after_s == 10.0
    assert classify_status(429, "soon", 0.0).retry_after_s is None


def test_default_schedule_ceilings_are_a_quarter_second_then_times_four() -> None:
    policy = policy_of()
    assert [policy.nominal_delay(n) for n in (1, 2, 3)] == [0.25, 1.0, 4.0]
    assert (policy.retries, policy.max_wait_s, policy.full_jitter) == (3, 30.0, True)


@given(seed=st.integers(0, 2**32), retry=st.integers(1, 6), base=st.floats(0.001, 2.0))
def test_full_jitter_stays_within_zero_and_the_ceiling(seed: int, retry: int, base: float) -> None:
    policy = policy_of(retries=10, backoff_s=base)
    delay = policy.backoff(retry, random.Random(seed))
    assert 0.0 <= delay < base * 4 ** (retry - 1)


def test_a_seeded_rng_replays_the_same_schedule_and_the_schedule_is_jittered() -> None:
    def schedule(seed: int) -> list[float]:
        rng, out, done = random.Random(seed), [], 0
        while isinstance(step := next_step(policy_of(), FAILED_503, done, 0.0, None, rng), Retry):
            out.append(step.delay_s)
            done = step.retry
        return out

    first = schedule(42)
    print(f"\nretry schedule (seed 42): {[round(d * 1000) for d in first]} ms")
    assert first == schedule(42) and len(first) == 3
    assert all(0 <= d < c for d, c in zip(first, (0.25, 1.0, 4.0), strict=True))
    assert schedule(43) != first


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_no_retry_on_4xx(status: int) -> None:
    step = next_step(policy_of(), classify_status(status), 0, 0.0, None, random.Random(1))
    assert step == Stop("not retryable")


def test_retries_stop_when_exhausted() -> None:
    rng = random.Random(1)
    assert isinstance(next_step(policy_of(retries=2), FAILED_503, 1, 0.0, None, rng), Retry)
    assert next_step(policy_of(retries=2), FAILED_503, 2, 0.0, None, rng) == Stop("retries exhausted")
    assert next_step(policy_of(retries=0), FAILED_503, 0, 0.0, None, rng) == Stop("retries exhausted")


def test_retry_after_is_honoured_as_a_minimum_and_refused_when_too_long() -> None:
    policy = policy_of(max_retry_after_s=30.0)
    throttled = classify_status(429, "2", 0.0)
    step = next_step(policy, throttled, 0, 0.0, None, random.Random(1))
    assert isinstance(step, Retry) and step.delay_s == 2.0  # jitter ceiling 0.25 < 2
    long_wait = classify_status(503, "120", 0.0)
    assert next_step(policy, long_wait, 0, 0.0, None, random.Random(1)) == Stop("retry-after too long")
    # A Retry-After shorter than the jittered backoff does not shorten it.
    short = classify_status(429, "0.001", 0.0)
    step = next_step(policy_of(backoff_s=10.0), short, 0, 0.0, None, random.Random(1))
    assert isinstance(step, Retry) and step.delay_s == policy_of(backoff_s=10.0).backoff(1, random.Random(1))


def test_retry_after_past_the_deadline_stops_at_once() -> None:
    throttled = classify_status(429, "5", 0.0)
    assert next_step(policy_of(), throttled, 0, 100.0, 103.0, random.Random(1)) == Stop("deadline")


@given(seed=st.integers(0, 2**32), done=st.integers(0, 3), now=st.floats(0, 1e6),
       left=st.floats(-1.0, 10.0), retry_after=st.one_of(st.none(), st.floats(0, 30)))
def test_a_retry_is_never_scheduled_past_the_deadline(seed: int, done: int, now: float, left: float,
                                                      retry_after: float | None) -> None:
    policy = policy_of(retries=4)
    result = AttemptResult("retryable", "503", 503, retry_after)
    step = next_step(policy, result, done, now, now + left, random.Random(seed))
    if isinstance(step, Retry):
        assert now + step.delay_s + MIN_ATTEMPT_S <= now + left + 1e-9
        assert retry_after is None or step.delay_s >= retry_after
        assert step.retry == done + 1
    else:
        assert step.reason in ("deadline", "retries exhausted")
