"""Retry decisions and the retry chain's headers."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sinks_factories import make_reply

from botstream.core.retry import RetryPolicy
from botstream.core.settings import Settings
from botstream.schemas.headers import RETRY_ATTEMPT, RETRY_FIRST_ERROR, RETRY_LAST_ERROR, RETRY_NOT_BEFORE
from botstream.sinks.errors import InvalidRetryHeaders
from botstream.sinks.outcomes import Delivered, Moved, Permanent, Retryable, Wait
from botstream.sinks.retry import (
    MAX_ERROR_BYTES,
    Done,
    RetryChain,
    RetryHeaders,
    ToDLQ,
    ToRetry,
    decode_retry_headers,
    encode_retry_headers,
    prepare_retry,
    redirected,
)

NOW = 1_700_000_000_000
FAIL = Retryable("HTTP 503", 503)


def chain(**policy: Any) -> RetryChain:
    return RetryChain(RetryPolicy(**policy))


def steps(retries: RetryChain, outcome: Retryable | Wait, rng: random.Random) -> list[ToRetry | ToDLQ | Done]:
    """Follow one reply through the chain, failing every time with `outcome`."""
    reply, out = make_reply(), []
    while True:
        step = retries.next_step(reply, outcome, NOW, rng)
        out.append(step)
        if not isinstance(step, ToRetry):
            return out
        reply = prepare_retry(reply, step, "failed")


def test_delivered_is_done() -> None:
    assert chain().next_step(make_reply(), Delivered("1"), NOW, random.Random(1)) == Done()


def test_permanent_goes_straight_to_the_dlq() -> None:
    step = chain().next_step(make_reply(), Permanent("Forbidden: bot was blocked by the user", 403, "403"),
                             NOW, random.Random(1))
    assert step == ToDLQ("permanent failure: http 403 [403]: Forbidden: bot was blocked by the user")


def test_levels_then_last_level_reused_then_dlq() -> None:
    hops = steps(chain(jitter=0.0), FAIL, random.Random(1))
    assert hops == [ToRetry(1, NOW + 5_000), ToRetry(2, NOW + 30_000), ToRetry(3, NOW + 300_000),
                    ToRetry(3, NOW + 300_000), ToDLQ("gave up after 5 attempts: http 503: HTTP 503")]


def test_max_attempts_one_means_no_retry() -> None:
    assert steps(chain(max_attempts=1), FAIL, random.Random(1)) == [
        ToDLQ("gave up after 1 attempts: http 503: HTTP 503")]


def test_jitter_stays_within_bounds_and_is_deterministic() -> None:
    retries = chain(delays_s=(10.0,), jitter=0.1)
    delays = [retries.next_step(make_reply(), FAIL, NOW, rng).not_before_ms - NOW  # type: ignore[union-attr]
              for rng in (random.Random(seed) for seed in range(500))]
    assert all(9_000 <= d <= 11_000 for d in delays)
    assert min(delays) < 9_300 and max(delays) > 10_700  # spread over the whole band
    assert steps(retries, FAIL, random.Random(7)) == steps(retries, FAIL, random.Random(7))


def test_wait_is_never_shortened_and_picks_the_covering_level() -> None:
    retries = chain(jitter=0.1)
    for seed in range(200):
        step = retries.next_step(make_reply(), Wait(12.0, "chat"), NOW, random.Random(seed))
        assert isinstance(step, ToRetry)
        assert step.level == 2  # the 30 s level is the first to cover 12 s
        assert NOW + 12_000 <= step.not_before_ms <= NOW + 13_200


def test_wait_longer_than_every_level_uses_the_last() -> None:
    step = chain().next_step(make_reply(), Wait(900.0, "bot"), NOW, random.Random(1))
    assert isinstance(step, ToRetry) and step.level == 3


def test_waits_count_toward_the_attempt_budget() -> None:
    assert isinstance(steps(chain(), Wait(1.0, "chat"), random.Random(1))[-1], ToDLQ)


def test_defer_without_counting_an_attempt() -> None:
    retries = chain(jitter=0.0)
    step = retries.defer(3.0, NOW, random.Random(1))
    assert step == ToRetry(1, NOW + 3_000)
    parked = prepare_retry(make_reply(attempt=2), step, None, count_attempt=False)
    assert (parked["attempt"], parked["not_before_ms"], parked["last_error"]) == (2, NOW + 3_000, None)


def test_moved_is_resent_at_once_to_the_new_chat() -> None:
    reply = make_reply(chat_id="-4242")
    moved = Moved("-1004242")
    assert chain().next_step(reply, moved, NOW, random.Random(1)) == ToRetry(1, NOW)
    resent = redirected(reply, moved)
    assert resent["chat_id"] == "-1004242"
    assert resent["chat_key"] == reply["chat_key"]  # same partition, same order
    assert resent["platform_meta"] == {"migrated_from": "-4242"}


def test_prepare_retry_keeps_the_first_error() -> None:
    step = ToRetry(1, NOW + 5_000)
    once = prepare_retry(make_reply(), step, "http 503")
    twice = prepare_retry(once, step, "transport: ReadTimeout")
    assert (twice["attempt"], twice["first_error"], twice["last_error"]) == (2, "http 503", "transport: ReadTimeout")


def test_policy_from_settings() -> None:
    retries = RetryChain.from_settings(Settings(retry_delays_s="1,2", max_attempts=3))
    assert (retries.policy.delays_s, retries.policy.max_attempts, retries.levels) == ((1.0, 2.0), 3, 2)


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(delays_s=())
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


class TestHeaders:
    def test_round_trip(self) -> None:
        headers = RetryHeaders(3, NOW + 30_000, "http 503", "transport: ReadTimeout: é", "botstream.replies/2@1042")
        assert decode_retry_headers(encode_retry_headers(headers)) == headers

    def test_round_trip_from_reply(self) -> None:
        reply = make_reply(attempt=1, not_before_ms=NOW, first_error="x", last_error="y")
        headers = RetryHeaders.from_reply(reply, origin=None)
        encoded = encode_retry_headers(headers)
        assert [name for name, _ in encoded] == [RETRY_ATTEMPT, RETRY_NOT_BEFORE, RETRY_FIRST_ERROR,
                                                 RETRY_LAST_ERROR]
        assert decode_retry_headers(encoded) == headers

    def test_absent_means_first_attempt(self) -> None:
        assert decode_retry_headers(None) == RetryHeaders()
        assert decode_retry_headers([("traceparent", b"00-a-b-01")]) == RetryHeaders()

    def test_mapping_and_case_insensitive_names(self) -> None:
        assert decode_retry_headers({"X-Botstream-Attempt": "2"}).attempt == 2

    @pytest.mark.parametrize("value", [b"two", b"-1"])
    def test_bad_numbers(self, value: bytes) -> None:
        with pytest.raises(InvalidRetryHeaders):
            decode_retry_headers([(RETRY_ATTEMPT, value)])

    def test_long_errors_are_clipped_on_a_character_boundary(self) -> None:
        encoded = dict(encode_retry_headers(RetryHeaders(last_error="é" * 2000)))
        value = encoded[RETRY_LAST_ERROR]
        assert len(value) <= MAX_ERROR_BYTES
        assert value.decode() == "é" * (MAX_ERROR_BYTES // 2)
