"""The integration shell without a network: MockTransport upstreams, a fake clock, seeded jitter."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid

import httpx
import pytest

from botstream.core.secret import Secret
from botstream.streams.integrations import (
    CallScope,
    IntegrationBusy,
    IntegrationFailed,
    IntegrationRejected,
    IntegrationTimeout,
    IntegrationUnavailable,
)
from botstream.streams.integrations.policy import Retry, classify_status, next_step
from tests.unit.integrations.support import FakeClock, Recorder, integration, sample


def bot_id() -> str:
    return f"b-{uuid.uuid4().hex[:8]}"  # fresh metric labels per test


async def blocked(request: httpx.Request) -> httpx.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_retries_follow_the_seeded_full_jitter_schedule_then_fail() -> None:
    clock, upstream, bot = FakeClock(), Recorder(503), bot_id()
    llm = integration(upstream, clock, seed=5, bot=bot, retries=3)
    with pytest.raises(IntegrationFailed, match="retries exhausted after 4 attempts") as err:
        await llm.request("POST", "/v1/answer", json={"q": 1})
    assert err.value.status == 503
    rng, expected = random.Random(5), []
    for done in range(3):
        step = next_step(llm.policy, classify_status(503), done, 0.0, None, rng)
        assert isinstance(step, Retry)
        expected.append(step.delay_s)
    assert clock.sleeps == expected and len(upstream.requests) == 4
    assert sample("botstream_integration_retries_total", bot=bot, integration="llm", reason="503") == 3
    assert sample("botstream_integration_calls_total", bot=bot, integration="llm", outcome="failed") == 1


async def test_transient_failures_are_retried_until_an_answer() -> None:
    upstream = Recorder(503, httpx.ConnectError("refused"), 200)
    resp = await integration(upstream).request("GET", "/v1/models")
    assert resp.status_code == 200 and len(upstream.requests) == 3


async def test_a_4xx_is_not_retried_and_carries_the_response() -> None:
    upstream = Recorder(404)
    with pytest.raises(IntegrationRejected) as err:
        await integration(upstream).request("GET", "/nope")
    assert len(upstream.requests) == 1
    assert err.value.status == 404 and err.value.response.json()["status"] == 404


async def test_429_retry_after_is_waited_out() -> None:
    clock, upstream = FakeClock(), Recorder((429, {"Retry-After": "2"}), 200)
    resp = await integration(upstream, clock).request("POST", "/v1/answer")
    assert resp.status_code == 200 and clock.sleeps == [2.0]


async def test_retries_never_run_past_the_deadline() -> None:
    clock, upstream = FakeClock(), Recorder(503)
    deadline = clock.now + 1.0
    llm = integration(upstream, clock, retries=10, backoff_s=0.25)
    with pytest.raises(IntegrationFailed, match="deadline") as err:
        await llm.request("GET", "/x", CallScope(deadline=deadline))
    print(f"\n{len(upstream.requests)} attempts, backoffs {[round(s, 3) for s in clock.sleeps]} s before the 1 s deadline")
    assert clock.now <= deadline and len(upstream.requests) < 11 and err.value.status == 503


async def test_a_call_with_no_time_left_sends_nothing() -> None:
    clock, upstream = FakeClock(), Recorder(200)
    with pytest.raises(IntegrationTimeout, match="no time left"):
        await integration(upstream, clock).request("GET", "/x", CallScope(deadline=clock.now + 0.01))
    assert upstream.requests == []


async def test_auth_and_correlation_headers_are_sent() -> None:
    upstream = Recorder(200)
    llm = integration(upstream, auth_header="Authorization", auth_scheme="Bearer", auth_value=Secret("sk-1"))
    await llm.request("POST", "/v1/answer", CallScope(correlation_id="corr-9"), headers={"X-Extra": "1"})
    [req] = upstream.requests
    assert req.headers["authorization"] == "Bearer sk-1" and req.headers["x-correlation-id"] == "corr-9"
    assert req.headers["x-extra"] == "1" and str(req.url) == "http://upstream.test/api/v1/answer"


async def test_breaker_opens_fails_fast_probes_and_closes() -> None:
    clock, upstream, bot = FakeClock(), Recorder(503), bot_id()
    llm = integration(upstream, clock, bot=bot, retries=0,
                      breaker={"failure_ratio": 0.5, "min_calls": 4, "window_s": 30, "open_s": 10})
    state = lambda: sample("botstream_integration_breaker_state", bot=bot, integration="llm")  # noqa: E731
    for _ in range(4):
        with pytest.raises(IntegrationFailed):
            await llm.request("GET", "/x")
    assert llm.breaker.state == "open" and state() == 2
    for _ in range(5):
        with pytest.raises(IntegrationUnavailable) as err:
            await llm.request("GET", "/x")
    assert len(upstream.requests) == 4 and err.value.retry_in_s == 10.0  # failing fast: nothing sent
    clock.advance(10)
    with pytest.raises(IntegrationFailed):  # the probe fails: open again
        await llm.request("GET", "/x")
    assert llm.breaker.state == "open" and len(upstream.requests) == 5
    clock.advance(10)
    upstream.answers = [200]
    assert (await llm.request("GET", "/x")).status_code == 200
    assert llm.breaker.state == "closed" and state() == 0
    assert sample("botstream_integration_calls_total", bot=bot, integration="llm", outcome="unavailable") == 5


async def test_4xx_and_429_do_not_open_the_breaker() -> None:
    upstream = Recorder(404, 429, 404, 429, 404, 429)
    llm = integration(upstream, retries=0, breaker={"min_calls": 2, "failure_ratio": 0.5})
    for _ in range(6):
        with pytest.raises((IntegrationRejected, IntegrationFailed)):
            await llm.request("GET", "/x")
    assert llm.breaker.state == "closed"


async def test_a_cancelled_half_open_probe_does_not_wedge_the_breaker() -> None:
    clock, bot = FakeClock(), bot_id()
    answers: list[str] = ["fail"]

    async def upstream(request: httpx.Request) -> httpx.Response:
        if answers[0] == "hang":
            await asyncio.Event().wait()
        return httpx.Response(503 if answers[0] == "fail" else 200)

    llm = integration(upstream, clock, bot=bot, retries=0, breaker={"min_calls": 1, "open_s": 5})
    with pytest.raises(IntegrationFailed):
        await llm.request("GET", "/x")
    assert llm.breaker.state == "open"
    clock.advance(5)
    answers[0] = "hang"
    probe = asyncio.create_task(llm.request("GET", "/x"))
    await asyncio.sleep(0.01)
    assert llm.breaker.state == "half_open"
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert llm.breaker.state == "open" and llm.slots_held == 0
    clock.advance(5)
    answers[0] = "ok"
    assert (await llm.request("GET", "/x")).status_code == 200 and llm.breaker.state == "closed"


async def test_a_full_cap_answers_busy_and_a_freed_slot_is_taken_by_a_waiter() -> None:
    bot = bot_id()
    gate = asyncio.Event()

    async def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/hold"):
            await gate.wait()
        return httpx.Response(200)

    held = integration(upstream, bot=bot, max_concurrency=1, slot_wait_s=0.0)
    holder = asyncio.create_task(held.request("GET", "/hold"))
    await asyncio.sleep(0.01)
    assert held.slots_held == 1
    with pytest.raises(IntegrationBusy, match="all 1 slots busy"):  # slot_wait_s = 0: no waiting at all
        await held.request("GET", "/x")
    held.config = dataclasses.replace(held.config, slot_wait_s=60.0)
    waiter = asyncio.create_task(held.request("GET", "/x"))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # queued for the slot, not sent
    gate.set()
    assert (await holder).status_code == 200 and (await waiter).status_code == 200
    assert held.slots_held == 0
    assert sample("botstream_integration_calls_total", bot=bot, integration="llm", outcome="busy") == 1


async def test_the_slot_wait_is_bounded_in_real_time() -> None:
    llm = integration(blocked, FakeClock(), max_concurrency=1, slot_wait_s=0.02)
    holder = asyncio.create_task(llm.request("GET", "/hold"))
    await asyncio.sleep(0.01)
    with pytest.raises(IntegrationBusy):
        await llm.request("GET", "/x")
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder


async def test_cancellation_mid_request_releases_the_slot_and_the_in_flight_count() -> None:
    clock, bot = FakeClock(), bot_id()
    llm = integration(blocked, clock, bot=bot, max_concurrency=1, slot_wait_s=0.0)
    task = asyncio.create_task(llm.request("GET", "/x"))
    await asyncio.sleep(0.01)
    assert sample("botstream_integration_in_flight", bot=bot, integration="llm") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert llm.slots_held == 0 and sample("botstream_integration_in_flight", bot=bot, integration="llm") == 0
    assert sample("botstream_integration_calls_total", bot=bot, integration="llm", outcome="cancelled") == 1
    with pytest.raises(IntegrationTimeout):  # the slot is free again: this call gets it at once
        await llm.request("GET", "/x", CallScope(deadline=clock.now + 0.1), retries=0)


async def test_every_attempt_has_a_hard_timeout() -> None:
    clock = FakeClock()
    llm = integration(blocked, clock, timeout_s=0.02, retries=1)
    with pytest.raises(IntegrationTimeout, match="timeout; retries exhausted after 2 attempts"):
        await llm.request("GET", "/x")
    assert len(clock.sleeps) == 1 and llm.slots_held == 0
