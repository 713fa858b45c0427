"""The integration guards against a real server: the sandbox's generic upstream, over TCP.

Latencies are measured and printed; assertions are about structure — how many requests the server
saw and held at once, which error came out, and that nothing was left in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from botstream.sandbox import SandboxServer
from botstream.streams.integrations import (
    BoundIntegration,
    CallScope,
    Integration,
    IntegrationBusy,
    IntegrationError,
    IntegrationFailed,
    IntegrationRejected,
    IntegrationTimeout,
    IntegrationUnavailable,
)
from tests.integration.integrations.conftest import RecordingSleep
from tests.processes import wait_until

MakeIntegration = Callable[..., Integration]


def upstream_idle(server: SandboxServer) -> bool:
    return server.client.upstream_stats()["in_flight_total"] == 0


async def test_the_cap_is_never_exceeded_under_three_times_as_many_callers(
        upstream: SandboxServer, make_integration: MakeIntegration) -> None:
    cap = 5
    upstream.client.patch_config({"upstream": {"latency": {"kind": "fixed", "ms": 100}}})
    # Without the guard the server does see every caller at once: the meter measures.
    async with httpx.AsyncClient() as raw:
        await asyncio.gather(*(raw.post(f"{upstream.base_url}/upstream/raw/v1", json={}) for _ in range(3 * cap)))
    llm = make_integration(max_concurrency=cap, slot_wait_s=10.0)
    started = time.monotonic()
    results = await asyncio.gather(*(llm.request("POST", "/v1/answer", json={"question": f"q{i}"})
                                     for i in range(3 * cap)))
    took = time.monotonic() - started
    stats = upstream.client.upstream_stats()
    print(f"\n{3 * cap} callers, cap {cap}, 100 ms upstream: peak {stats['peak_in_flight']['llm']} in flight "
          f"with the guard, {stats['peak_in_flight']['raw']} without; all answered in {took * 1000:.0f} ms")
    assert [r.status_code for r in results] == [200] * (3 * cap)
    assert stats["requests"]["llm"] == 3 * cap
    assert stats["peak_in_flight"]["llm"] <= cap < stats["peak_in_flight"]["raw"]
    assert llm.slots_held == 0


async def test_callers_beyond_the_cap_get_busy_after_a_bounded_wait(
        upstream: SandboxServer, make_integration: MakeIntegration) -> None:
    upstream.client.patch_config({"upstream": {"keys": {"stuck": "hang"}}})
    llm = make_integration(max_concurrency=2, slot_wait_s=0.1)
    holders = [asyncio.create_task(llm.request("POST", "/v1", json={"user": "stuck"})) for _ in range(2)]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    outcomes = await asyncio.gather(*(llm.request("POST", "/v1", json={"user": f"c{i}"}) for i in range(4)),
                                    return_exceptions=True)
    print(f"\n4 callers on a full cap of 2: busy after {(time.monotonic() - started) * 1000:.0f} ms (slot_wait_s 0.1)")
    assert all(isinstance(o, IntegrationBusy) for o in outcomes)
    for task in holders:
        task.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    wait_until(lambda: upstream_idle(upstream), timeout=5, what="the held requests to be abandoned")
    stats = upstream.client.upstream_stats()
    assert stats["requests"]["llm"] == 2 and stats["outcomes"]["llm"] == {"hang": 2, "disconnected": 2}
    assert llm.slots_held == 0


async def test_the_attempt_timeout_holds_and_the_hung_request_is_dropped(
        upstream: SandboxServer, make_integration: MakeIntegration) -> None:
    upstream.client.patch_config({"upstream": {"hang_ratio": 1.0}})
    llm = make_integration(timeout_s=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises(IntegrationTimeout, match="timeout; retries exhausted after 1 attempt"):
        await llm.request("GET", "/v1/models")
    print(f"\nhung upstream, timeout_s 0.3: IntegrationTimeout after {(time.monotonic() - started) * 1000:.0f} ms")
    wait_until(lambda: upstream_idle(upstream), timeout=5, what="the server to see the client leave")
    assert upstream.client.upstream_stats()["outcomes"]["llm"] == {"hang": 1, "disconnected": 1}


async def test_retries_follow_the_policy(upstream: SandboxServer, make_integration: MakeIntegration,
                                         sleeps: RecordingSleep) -> None:
    upstream.client.patch_config({"upstream": {"error_ratio": 1.0, "error_statuses": [503]}})
    llm = make_integration(retries=3, backoff_s=0.02)
    with pytest.raises(IntegrationFailed, match="retries exhausted after 4 attempts") as err:
        await llm.request("POST", "/v1/answer", json={})
    print(f"\n503 x4: backoffs {[round(d * 1000, 1) for d in sleeps.delays]} ms (ceilings 20, 80, 320 ms)")
    assert err.value.status == 503 and upstream.client.upstream_stats()["requests"]["llm"] == 4
    assert len(sleeps.delays) == 3 and all(0 <= d < c for d, c in zip(sleeps.delays, (0.02, 0.08, 0.32), strict=True))


async def test_retries_stop_at_the_deadline(upstream: SandboxServer, make_integration: MakeIntegration,
                                            sleeps: RecordingSleep) -> None:
    upstream.client.patch_config({"upstream": {"error_ratio": 1.0, "latency": {"kind": "fixed", "ms": 50}}})
    llm = make_integration(retries=10, backoff_s=0.1)
    deadline = time.monotonic() + 1.0
    with pytest.raises(IntegrationError) as err:
        await llm.request("POST", "/v1/answer", CallScope(deadline=deadline), json={})
    ended = time.monotonic()
    attempts = upstream.client.upstream_stats()["requests"]["llm"]
    print(f"\n10 retries allowed, 1 s deadline: {attempts} attempts, backoffs "
          f"{[round(d, 3) for d in sleeps.delays]} s, gave up {(deadline - ended) * 1000:.0f} ms before the deadline "
          f"({err.value})")
    assert isinstance(err.value, IntegrationFailed | IntegrationTimeout) and "deadline" in str(err.value)
    assert attempts < 11 and attempts == len(sleeps.delays) + 1


async def test_429_retry_after_is_honoured(upstream: SandboxServer, make_integration: MakeIntegration,
                                           sleeps: RecordingSleep) -> None:
    upstream.client.patch_config({"upstream": {"keys": {"throttled": "rate_limit"}, "retry_after_s": 0.2}})
    llm = make_integration(retries=2, backoff_s=0.01)
    with pytest.raises(IntegrationFailed) as err:
        await llm.request("POST", "/v1/answer", json={"user": "throttled"})
    print(f"\n429 with Retry-After 0.2: waits {sleeps.delays} s")
    assert err.value.status == 429 and sleeps.delays == [0.2, 0.2]
    assert upstream.client.upstream_stats()["outcomes"]["llm"] == {"rate_limit": 3}
    assert llm.breaker.state == "closed"  # throttling is the API working


async def test_the_breaker_opens_under_a_failure_burst_fails_fast_and_closes_after_recovery(
        upstream: SandboxServer, make_integration: MakeIntegration) -> None:
    upstream.client.patch_config({"upstream": {"error_ratio": 1.0}})
    llm = make_integration(retries=0, breaker={"failure_ratio": 0.5, "min_calls": 5, "window_s": 10, "open_s": 0.5})
    for _ in range(5):
        with pytest.raises(IntegrationFailed):
            await llm.request("GET", "/v1")
    assert llm.breaker.state == "open"
    started = time.monotonic()
    fast = await asyncio.gather(*(llm.request("GET", "/v1") for _ in range(20)), return_exceptions=True)
    print(f"\nbreaker open: 20 calls failed fast in {(time.monotonic() - started) * 1000:.1f} ms")
    assert all(isinstance(o, IntegrationUnavailable) for o in fast)
    assert upstream.client.upstream_stats()["requests"]["llm"] == 5  # nothing reached the server
    upstream.client.patch_config({"upstream": {"error_ratio": 0.0}})
    await asyncio.sleep(0.5)
    assert (await llm.request("GET", "/v1")).status_code == 200  # the half-open probe
    assert llm.breaker.state == "closed"
    assert (await llm.request("GET", "/v1")).status_code == 200
    assert upstream.client.upstream_stats()["requests"]["llm"] == 7


async def test_the_handler_timeout_cancels_the_request_and_frees_the_slot(
        upstream: SandboxServer, make_integration: MakeIntegration) -> None:
    """No deadline handed in (the worst case): wait_for's cancellation alone must clean up."""
    upstream.client.patch_config({"upstream": {"hang_ratio": 1.0}})
    llm = make_integration(timeout_s=30.0, max_concurrency=1)
    bound = BoundIntegration(llm, CallScope(correlation_id="corr-1"))

    async def handler() -> None:
        await bound.post("/v1/answer", json={"question": "?"})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(handler(), 0.3)
    assert llm.slots_held == 0
    wait_until(lambda: upstream_idle(upstream), timeout=5, what="the server to see the client leave")
    assert upstream.client.upstream_stats()["outcomes"]["llm"] == {"hang": 1, "disconnected": 1}
    upstream.client.patch_config({"upstream": {"hang_ratio": 0.0}})
    assert (await bound.get("/v1/models")).status_code == 200  # the one slot is free again


async def test_the_auth_header_reaches_the_upstream(upstream: SandboxServer, make_integration: MakeIntegration) -> None:
    from botstream.core.secret import Secret

    upstream.client.patch_config({"upstream": {"authorization": "Bearer sk-test"}})
    good = make_integration(auth_header="Authorization", auth_scheme="Bearer", auth_value=Secret("sk-test"))
    assert (await good.request("GET", "/v1/models")).status_code == 200
    with pytest.raises(IntegrationRejected) as err:
        await make_integration().request("GET", "/v1/models")
    assert err.value.status == 401
