"""The I/O shell of an integration: one pooled httpx client and its guards, per worker process.

Every call goes: deadline check → breaker (fail fast while open) → a concurrency slot (bounded wait)
→ breaker `allow` (a half-open probe is a real request) → one attempt under a hard timeout → breaker
`record` → `next_step` (retry after a jittered backoff, or stop). The slot is held only while a
request is in flight, not during backoff, so the cap counts requests the upstream actually sees.

Cancellation — the handler's `asyncio.wait_for` firing — reaches whichever await the call is in; the
httpx request is abandoned (httpcore closes its connection, so the server sees the client leave),
the slot and the in-flight count are released by `finally`, and an abandoned half-open probe is
recorded as a failure so the breaker does not wait for it forever. Nothing outlives the handler.

The decisions themselves are pure (`botstream.streams.integrations.policy`, `botstream.core.breaker`); this module
waits, sends, counts and logs them with the update's correlation id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from botstream.core.bots import IntegrationConfig
from botstream.core.breaker import CircuitBreaker, counts_as_failure
from botstream.core.retry import RetryPolicy
from botstream.streams.integrations import metrics
from botstream.streams.integrations.errors import (
    IntegrationBusy,
    IntegrationError,
    IntegrationFailed,
    IntegrationRejected,
    IntegrationTimeout,
    IntegrationUnavailable,
)
from botstream.streams.integrations.policy import (
    MIN_ATTEMPT_S,
    AttemptResult,
    Stop,
    attempt_timeout,
    classify_exception,
    classify_status,
    integration_policy,
    next_step,
    slot_wait_budget,
    time_left,
)

__all__ = ["BoundIntegration", "CallScope", "Integration"]

log = logging.getLogger(__name__)
CORRELATION_HEADER = "X-Correlation-Id"


@dataclass(frozen=True)
class CallScope:
    """Who is calling: the update's correlation id and chat (for logs and the upstream), and the
    monotonic deadline no wait or attempt may pass (None: only the attempts' own timeouts)."""

    correlation_id: str | None = None
    chat_key: str | None = None
    deadline: float | None = None


class Integration:
    """One declared integration (bot, name) in one worker process."""

    def __init__(self, bot_id: str, config: IntegrationConfig, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.bot_id = bot_id
        self.config = config
        self.name = config.name
        self.policy = integration_policy(config)
        b = config.breaker
        self.breaker = CircuitBreaker(b.failure_ratio, b.min_calls, b.window_s, b.open_s, b.half_open_probes)
        self.slots_held = 0
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._labels = (bot_id, config.name)
        self._breaker_seen = self.breaker.state
        metrics.BREAKER_STATE.labels(*self._labels).set(metrics.BREAKER_VALUE[self._breaker_seen])
        metrics.IN_FLIGHT.labels(*self._labels).set(0)

    def client(self) -> httpx.AsyncClient:
        """The pooled client, created on first use inside the worker's event loop. Its pool is as
        large as the cap, so requests never queue inside httpx, only (visibly) for our slots."""
        if self._client is None:
            cap = self.config.max_concurrency
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url, headers=self.config.auth_headers(), transport=self._transport,
                timeout=httpx.Timeout(self.config.timeout_s),
                limits=httpx.Limits(max_connections=cap, max_keepalive_connections=cap))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(self, method: str, path: str, scope: CallScope = CallScope(), *,
                      retries: int | None = None, **kwargs: Any) -> httpx.Response:
        """Send through the guards; a response below 400, or an `IntegrationError`.

        `retries` overrides the configured number for this call (0 for a request that must not be
        repeated); `kwargs` go to `httpx.AsyncClient.request` (json, content, params, headers...).
        """
        policy = self.policy if retries is None else integration_policy(self.config, retries)
        if scope.correlation_id:
            kwargs["headers"] = {CORRELATION_HEADER: scope.correlation_id, **(kwargs.get("headers") or {})}
        started = self._clock()
        outcome = "error"
        try:
            response = await self._call(method, path, scope, policy, kwargs)
            outcome = "ok"
            return response
        except IntegrationError as exc:
            outcome = exc.outcome
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.CALLS.labels(*self._labels, outcome).inc()
            metrics.CALL_SECONDS.labels(*self._labels).observe(self._clock() - started)

    async def _call(self, method: str, path: str, scope: CallScope, policy: RetryPolicy,
                    kwargs: dict[str, Any]) -> httpx.Response:
        retries_done = 0
        while True:
            now = self._clock()
            if time_left(now, scope.deadline) < MIN_ATTEMPT_S:
                raise IntegrationTimeout(self.name, f"no time left before the handler's deadline "
                                                    f"({retries_done} retries made)")
            if self.breaker.retry_in(now) > 0:
                raise self._unavailable(scope, now)
            async with self._slot(scope):
                now = self._clock()
                if time_left(now, scope.deadline) < MIN_ATTEMPT_S:
                    raise IntegrationTimeout(self.name, "the wait for a slot used up the time before the deadline")
                timeout = attempt_timeout(now, scope.deadline, self.config.timeout_s)
                allowed = self.breaker.allow(now)
                self._breaker_moved(scope)
                if not allowed:
                    raise self._unavailable(scope, now)
                result, response = await self._attempt(method, path, timeout, scope, kwargs)
            if result.kind == "ok" and response is not None:
                return response
            step = next_step(policy, result, retries_done, self._clock(), scope.deadline, self._rng)
            if isinstance(step, Stop):
                raise self._final_error(result, step, retries_done + 1, response)
            metrics.RETRIES.labels(*self._labels, result.reason).inc()
            log.info("integration %s/%s: retry %d in %d ms after %s", self.bot_id, self.name, step.retry,
                     round(step.delay_s * 1000), result.reason, extra=self._extra(
                         scope, attempt=step.retry + 1, delay_s=round(step.delay_s, 3), reason=result.reason,
                         status=result.status))
            await self._sleep(step.delay_s)
            retries_done = step.retry

    @asynccontextmanager
    async def _slot(self, scope: CallScope) -> AsyncIterator[None]:
        started = self._clock()
        if self._slots.locked():
            budget = slot_wait_budget(started, scope.deadline, self.config.slot_wait_s)
            try:
                if budget <= 0:
                    raise TimeoutError
                async with asyncio.timeout(budget):
                    await self._slots.acquire()
            except TimeoutError:
                waited = self._clock() - started
                metrics.SLOT_WAIT_SECONDS.labels(*self._labels).observe(waited)
                log.warning("integration %s/%s: busy, no slot of %d within %d ms", self.bot_id, self.name,
                            self.config.max_concurrency, round(waited * 1000),
                            extra=self._extra(scope, reason="busy", delay_s=round(waited, 3)))
                raise IntegrationBusy(self.name, f"all {self.config.max_concurrency} slots busy for "
                                                 f"{waited * 1000:.0f} ms") from None
            waited = self._clock() - started
            log.info("integration %s/%s: waited %d ms for a slot", self.bot_id, self.name, round(waited * 1000),
                     extra=self._extra(scope, reason="slot_wait", delay_s=round(waited, 3)))
        else:
            await self._slots.acquire()  # free: returns at once
            waited = 0.0
        metrics.SLOT_WAIT_SECONDS.labels(*self._labels).observe(waited)
        self.slots_held += 1
        metrics.IN_FLIGHT.labels(*self._labels).inc()
        try:
            yield
        finally:
            self.slots_held -= 1
            metrics.IN_FLIGHT.labels(*self._labels).dec()
            self._slots.release()

    async def _attempt(self, method: str, path: str, limit_s: float, scope: CallScope,
                       kwargs: dict[str, Any]) -> tuple[AttemptResult, httpx.Response | None]:
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(limit_s):  # hard: httpx's own timeouts are per read, not per request
                response = await self.client().request(method, path, timeout=limit_s, **kwargs)
        except asyncio.CancelledError:
            if self.breaker.state == "half_open":  # an abandoned probe: do not wait for it forever
                self.breaker.record(False, self._clock())
                self._breaker_moved(scope)
            raise
        except (TimeoutError, httpx.TransportError) as exc:
            result = classify_exception(exc)
        else:
            result = classify_status(response.status_code, response.headers.get("retry-after"), self._wall_clock())
        self.breaker.record(not counts_as_failure(result), self._clock())
        self._breaker_moved(scope)
        return result, response

    def _breaker_moved(self, scope: CallScope) -> None:
        state = self.breaker.state
        if state == self._breaker_seen:
            return
        log.warning("integration %s/%s: breaker %s -> %s", self.bot_id, self.name, self._breaker_seen, state,
                    extra=self._extra(scope, reason=f"breaker_{state}"))
        self._breaker_seen = state
        metrics.BREAKER_STATE.labels(*self._labels).set(metrics.BREAKER_VALUE[state])

    def _unavailable(self, scope: CallScope, now: float) -> IntegrationUnavailable:
        retry_in = self.breaker.retry_in(now)
        log.debug("integration %s/%s: breaker %s, failing fast", self.bot_id, self.name, self.breaker.state,
                  extra=self._extra(scope, reason="unavailable"))
        what = f"open for {retry_in:.1f} s more" if retry_in > 0 else "half-open, its probe is in flight"
        return IntegrationUnavailable(self.name, f"circuit breaker {what}", retry_in)

    def _final_error(self, result: AttemptResult, step: Stop, attempts: int,
                     response: httpx.Response | None) -> IntegrationError:
        if result.kind == "rejected" and result.status is not None:
            return IntegrationRejected(self.name, f"HTTP {result.status}", result.status, response)
        detail = f"{result.reason}; {step.reason} after {attempts} attempt{'s' if attempts > 1 else ''}"
        if result.timed_out:
            return IntegrationTimeout(self.name, detail)
        return IntegrationFailed(self.name, detail, result.status)

    def _extra(self, scope: CallScope, **fields: Any) -> dict[str, Any]:
        return {"correlation_id": scope.correlation_id, "chat_key": scope.chat_key, "bot": self.bot_id,
                **{k: v for k, v in fields.items() if v is not None}}


class BoundIntegration:
    """An integration as one handler call sees it: `ctx.integrations["llm"]`. Calls carry the
    update's correlation id and never wait or run past the handler's deadline."""

    __slots__ = ("_integration", "scope")

    def __init__(self, integration: Integration, scope: CallScope) -> None:
        self._integration = integration
        self.scope = scope

    @property
    def name(self) -> str:
        return self._integration.name

    async def get(self, path: str, *, params: Any = None, headers: dict[str, str] | None = None,
                  retries: int | None = None) -> httpx.Response:
        return await self.request("GET", path, params=params, headers=headers, retries=retries)

    async def post(self, path: str, *, json: Any = None, content: bytes | str | None = None,
                   data: dict[str, Any] | None = None, params: Any = None, headers: dict[str, str] | None = None,
                   retries: int | None = None) -> httpx.Response:
        return await self.request("POST", path, json=json, content=content, data=data, params=params,
                                  headers=headers, retries=retries)

    async def request(self, method: str, path: str, *, retries: int | None = None, **kwargs: Any) -> httpx.Response:
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return await self._integration.request(method, path, self.scope, retries=retries, **kwargs)
