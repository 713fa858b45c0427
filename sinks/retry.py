"""Where a reply goes after an attempt: done, a retry level (topic replies.retry.<level>), or the DLQ.

Pure decisions over the reply, the outcome, the time and an injected `random.Random`, plus the
encoding of the retry chain's Kafka headers (their names are part of the wire contract,
`botstream.schemas.headers`), so the chain's behaviour is tested without a broker.

The schedule is a `botstream.core.retry.RetryPolicy` with one delay per level and *proportional*
jitter: a delay d becomes d * U(1 - jitter, 1 + jitter). Full jitter (U(0, d)) would empty the
meaning of the levels (a "300 s" retry could come back after 2 s); proportional jitter keeps each
level's delay while spreading a burst of failures over +-10 %. Platform-given waits are only ever
lengthened (U(1, 1 + jitter)): retrying before Retry-After is refused again.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from botstream.core import retry
from botstream.core.settings import Settings
from botstream.schemas.headers import (
    RETRY_ATTEMPT,
    RETRY_FIRST_ERROR,
    RETRY_LAST_ERROR,
    RETRY_NOT_BEFORE,
    RETRY_ORIGIN,
)
from botstream.sinks.errors import InvalidRetryHeaders
from botstream.sinks.outcomes import Delivered, Moved, Outcome, Permanent, Retryable, Wait, describe_outcome

RETRY_HEADERS = (RETRY_ATTEMPT, RETRY_NOT_BEFORE, RETRY_FIRST_ERROR, RETRY_LAST_ERROR, RETRY_ORIGIN)
MAX_ERROR_BYTES = 1000  # errors ride on every hop; a proxy's HTML page must not


@dataclass(frozen=True)
class ToRetry:
    """Produce the reply to retry level `level` (1-based); it may run from `not_before_ms` on."""

    level: int
    not_before_ms: int


@dataclass(frozen=True)
class ToDLQ:
    reason: str


@dataclass(frozen=True)
class Done:
    """Delivered: record it in the ledger and on `deliveries`."""


RetryStep: TypeAlias = ToRetry | ToDLQ | Done


@dataclass(frozen=True)
class RetryChain:
    """The retry topic chain: one level (topic) per delay of its `RetryPolicy`, and how many attempts a
    reply gets in all.

    `attempt` on a reply counts the attempts made before the current one, so the current attempt
    failing is attempt + 1; at `max_attempts` the reply goes to the DLQ. Failures past the last level
    stay on the last level. Permanent failures skip the chain: the same request cannot succeed.
    """

    policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryChain:
        return cls(retry.RetryPolicy(delays_s=settings.retry_delays, max_attempts=settings.max_attempts))

    @property
    def levels(self) -> int:
        return self.policy.levels

    def next_step(self, reply: Mapping[str, Any], outcome: Outcome, now_ms: int, rng: random.Random) -> RetryStep:
        """Decide after an attempt that ended in `outcome`.

        Retryable: level = failures so far (capped at the last level), after that level's delay.
        Wait: after the platform's wait, on the first level whose delay covers it (see `defer`).
        Moved: immediately, on level 1, once the shell rewrote the chat id (`redirected`).
        Each of these counts as an attempt, so even a platform that keeps saying "wait" ends in the DLQ.
        """
        if isinstance(outcome, Delivered):
            return Done()
        if isinstance(outcome, Permanent):
            return ToDLQ(f"permanent failure: {describe_outcome(outcome)}")
        failed = int(reply.get("attempt") or 0) + 1
        if self.policy.exhausted(failed):
            return ToDLQ(f"gave up after {failed} attempts: {describe_outcome(outcome)}")
        if isinstance(outcome, Wait):
            return self.defer(outcome.retry_after_s, now_ms, rng)
        if isinstance(outcome, Moved):
            return ToRetry(1, now_ms)
        if isinstance(outcome, Retryable):
            level = min(failed, self.levels)
            return ToRetry(level, now_ms + round(self.policy.backoff(failed, rng) * 1000))
        raise TypeError(f"not an outcome: {outcome!r}")

    def defer(self, wait_s: float, now_ms: int, rng: random.Random) -> ToRetry:
        """Park a reply for at least `wait_s` (a 429, or the limiter's answer when it is long).

        The level is the first whose delay is at least the wait: records on a level then come due in
        about the order they were written, so one long wait does not hold up the shorter ones behind
        it in the same partition. The shell decides whether this counts as an attempt.
        """
        level = next((i + 1 for i, d in enumerate(self.policy.delays_s) if d >= wait_s), self.levels)
        return ToRetry(level, now_ms + round(self.policy.lengthened(wait_s, rng) * 1000))




def prepare_retry(reply: Mapping[str, Any], step: ToRetry, error: str | None, *,
                  count_attempt: bool = True) -> dict[str, Any]:
    """The record to produce to the retry level: attempt counted, not-before set, errors kept."""
    out = dict(reply)
    if count_attempt:
        out["attempt"] = int(reply.get("attempt") or 0) + 1
    out["not_before_ms"] = step.not_before_ms
    if error is not None:
        error = _clip(error)
        out["first_error"] = reply.get("first_error") or error
        out["last_error"] = error
    return out


def redirected(reply: Mapping[str, Any], moved: Moved) -> dict[str, Any]:
    """The reply addressed to the chat's new id. The chat key (and so the partition and the order
    with the chat's other replies) stays; the old id is kept in platform_meta for operators."""
    out = dict(reply)
    out["platform_meta"] = {**(reply.get("platform_meta") or {}), "migrated_from": str(reply.get("chat_id"))}
    out["chat_id"] = moved.new_chat_id
    return out


@dataclass(frozen=True)
class RetryHeaders:
    """The retry state carried in Kafka headers, readable without decoding the Avro value.

    `origin` is where the reply first failed ("topic/partition@offset"): operators trace a DLQ
    record back with it.
    """

    attempt: int = 0
    not_before_ms: int = 0
    first_error: str | None = None
    last_error: str | None = None
    origin: str | None = None

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any], origin: str | None) -> RetryHeaders:
        return cls(int(reply.get("attempt") or 0), int(reply.get("not_before_ms") or 0),
                   reply.get("first_error"), reply.get("last_error"), origin)


def encode_retry_headers(headers: RetryHeaders) -> list[tuple[str, bytes]]:
    out = [(RETRY_ATTEMPT, str(headers.attempt).encode()),
           (RETRY_NOT_BEFORE, str(headers.not_before_ms).encode())]
    for name, value in ((RETRY_FIRST_ERROR, headers.first_error), (RETRY_LAST_ERROR, headers.last_error),
                        (RETRY_ORIGIN, headers.origin)):
        if value is not None:
            out.append((name, _clip(value).encode()))
    return out


def decode_retry_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> RetryHeaders:
    """The retry state from a record's headers; missing headers mean a first attempt.

    Other headers are ignored, names compare case-insensitively, and the last of a repeated header
    wins. Raises InvalidRetryHeaders when a number header holds something else.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    found: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in RETRY_HEADERS and value is not None:
            found[key] = value.decode(errors="replace") if isinstance(value, bytes) else value
    return RetryHeaders(
        attempt=_int_header(found, RETRY_ATTEMPT),
        not_before_ms=_int_header(found, RETRY_NOT_BEFORE),
        first_error=found.get(RETRY_FIRST_ERROR),
        last_error=found.get(RETRY_LAST_ERROR),
        origin=found.get(RETRY_ORIGIN),
    )


def _int_header(found: dict[str, str], name: str) -> int:
    raw = found.get(name)
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRetryHeaders(f"header {name} is not an integer: {raw[:40]!r}") from None
    if value < 0:
        raise InvalidRetryHeaders(f"header {name} is negative: {value}")
    return value


def _clip(text: str) -> str:
    data = text.encode()
    if len(data) <= MAX_ERROR_BYTES:
        return text
    return data[:MAX_ERROR_BYTES].decode(errors="ignore")
