"""What do the integration guards cost, and do they hold the line when the upstream misbehaves?

The sandbox's generic upstream runs in a subprocess (so the server does not share this process's
GIL); the callers run here on one event loop.

1. Overhead: the same calls through a bare `httpx.AsyncClient` (pool of `cap` connections, `cap`
   callers at a time) and through an `Integration` (cap, breaker, retry bookkeeping, metrics).
   Reported: calls/s and p50/p99 of both, and the client CPU per call (this process's user+sys time,
   steady on a shared machine where wall figures swing). Target: the guards add <= 150 µs of CPU per
   call — nothing next to the tens or thousands of milliseconds of the APIs they guard.
2. Saturation: 3 x cap callers against an upstream with fixed latency. The server's measured peak of
   concurrent requests must stay <= cap; throughput should approach cap / latency.
3. Hangs: a share of calls hang; with timeout_s and no retries, the p99 of all calls is bounded by
   the timeout and the other calls keep their latency.

    python -m bench.integrations.bench_integrations [--calls 3000] [--cap 32] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from botstream.core.bots import BreakerSettings, IntegrationConfig
from botstream.core.processes import stop_process
from botstream.ops.embedded_kafka import free_port
from botstream.streams.integrations import Integration, IntegrationError

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def upstream_server() -> Iterator[str]:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as cfg:
        json.dump({"seed": 1}, cfg)
    proc = subprocess.Popen([sys.executable, "-m", "botstream.sandbox", "--port", str(port), "--no-limits", "--config", cfg.name],
                            env={**os.environ, "BOTSTREAM_SANDBOX_TOKEN": CONTROL_TOKEN},
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{base}/_sandbox/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("sandbox did not start")
            time.sleep(0.05)
        yield base
    finally:
        stop_process(proc)
        os.unlink(cfg.name)


CONTROL_TOKEN = secrets.token_urlsafe(24)  # the sandbox's control API wants it


def control(base: str, method: str, path: str, body: Any = None) -> Any:
    resp = httpx.request(method, f"{base}/_sandbox/{path}", json=body, timeout=5,
                         headers={"Authorization": f"Bearer {CONTROL_TOKEN}"})
    resp.raise_for_status()
    return resp.json()


def configure(base: str, upstream: dict[str, Any]) -> None:
    control(base, "PUT", "config", {"upstream": None})  # back to defaults
    control(base, "PUT", "config", {"upstream": upstream})
    control(base, "POST", "upstream/reset")


async def run_calls(call: Callable[[int], Awaitable[Any]], calls: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(calls))

    async def worker() -> None:
        nonlocal errors
        for i in queue:
            t0 = time.perf_counter()
            try:
                await call(i)
            except (IntegrationError, httpx.HTTPError):
                errors += 1
            latencies.append(time.perf_counter() - t0)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies.sort()
    return {"calls": calls, "errors": errors, "seconds": round(took, 3), "calls_per_s": round(calls / took, 1),
            "cpu_us_per_call": round(cpu / calls * 1e6, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


def integration(base: str, cap: int, **overrides: Any) -> Integration:
    cfg = IntegrationConfig(name="llm", base_url=f"{base}/upstream/llm", max_concurrency=cap, slot_wait_s=30.0,
                            breaker=BreakerSettings(min_calls=10**9), **overrides)
    return Integration("bench", cfg, rng=random.Random(1))


async def overhead(base: str, calls: int, cap: int) -> dict[str, Any]:
    configure(base, {})
    body = {"question": "hello"}
    async with httpx.AsyncClient(base_url=f"{base}/upstream/raw", timeout=5,
                                 limits=httpx.Limits(max_connections=cap, max_keepalive_connections=cap)) as raw:
        await run_calls(lambda i: raw.post("/v1/answer", json=body), 200, cap)  # warm up
        bare = await run_calls(lambda i: raw.post("/v1/answer", json=body), calls, cap)
    guarded_int = integration(base, cap)
    await run_calls(lambda i: guarded_int.request("POST", "/v1/answer", json=body), 200, cap)
    guarded = await run_calls(lambda i: guarded_int.request("POST", "/v1/answer", json=body), calls, cap)
    await guarded_int.aclose()
    added = guarded["cpu_us_per_call"] - bare["cpu_us_per_call"]
    return {"bare": bare, "guarded": guarded, "guard_cpu_us_per_call": round(added, 1),
            "cpu_ratio": round(bare["cpu_us_per_call"] / guarded["cpu_us_per_call"], 3),
            "wall_ratio": round(guarded["calls_per_s"] / bare["calls_per_s"], 3)}


async def saturation(base: str, cap: int, latency_ms: float) -> dict[str, Any]:
    configure(base, {"latency": {"kind": "fixed", "ms": latency_ms}})
    llm = integration(base, cap)
    calls = cap * 20
    result = await run_calls(lambda i: llm.request("GET", "/v1"), calls, 3 * cap)
    await llm.aclose()
    stats = control(base, "GET", "upstream/stats")
    ideal = cap / (latency_ms / 1000)
    return {**result, "callers": 3 * cap, "cap": cap, "server_peak": stats["peak_in_flight"].get("llm", 0),
            "ideal_calls_per_s": round(ideal, 1), "share_of_ideal": round(result["calls_per_s"] / ideal, 3)}


async def hangs(base: str, cap: int, hang_ratio: float, timeout_s: float) -> dict[str, Any]:
    configure(base, {"hang_ratio": hang_ratio, "latency": {"kind": "fixed", "ms": 5}})
    llm = integration(base, cap, timeout_s=timeout_s, retries=0)
    result = await run_calls(lambda i: llm.request("GET", "/v1"), cap * 10, cap)
    await llm.aclose()
    await asyncio.sleep(0.2)
    stats = control(base, "GET", "upstream/stats")
    return {**result, "hang_ratio": hang_ratio, "timeout_ms": timeout_s * 1000,
            "left_in_flight_on_server": stats["in_flight_total"],
            "server_outcomes": stats["outcomes"].get("llm", {})}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with upstream_server() as base:
        out = {"overhead": await overhead(base, args.calls, args.cap),
               "saturation": await saturation(base, 8, 20.0),
               "hangs": await hangs(base, 16, 0.1, 0.2)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--cap", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    o, s, h = result["overhead"], result["saturation"], result["hangs"]
    b, g = o["bare"], o["guarded"]
    print(f"overhead: bare {b['calls_per_s']} calls/s, {b['cpu_us_per_call']} µs CPU/call (p50 {b['p50_ms']} ms) | "
          f"guarded {g['calls_per_s']} calls/s, {g['cpu_us_per_call']} µs CPU/call (p50 {g['p50_ms']} ms) | "
          f"guards add {o['guard_cpu_us_per_call']} µs CPU per call (target <= 150), CPU ratio bare/guarded "
          f"{o['cpu_ratio']}")
    print(f"saturation: {s['callers']} callers, cap {s['cap']}, 20 ms upstream: server peak {s['server_peak']} "
          f"(must be <= {s['cap']}), {s['calls_per_s']} calls/s = {s['share_of_ideal']:.0%} of cap/latency")
    print(f"hangs: {h['hang_ratio']:.0%} of calls hang, timeout {h['timeout_ms']:.0f} ms: p50 {h['p50_ms']} ms, "
          f"p99 {h['p99_ms']} ms, errors {h['errors']}/{h['calls']}, left in flight on the server: "
          f"{h['left_in_flight_on_server']}")
    line = json.dumps(result)
    if args.json:
        args.json.write_text(line)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
