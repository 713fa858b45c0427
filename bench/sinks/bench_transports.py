"""Which HTTP transport should the sinks send with? Each one driven against the real sandbox.

The sandbox (limits off) runs in its own process; every (transport, width) runs in a fresh child
process of its own, so the CPU it spends is its own (user + sys of that process, `time.process_time`
around the timed part only: start-up, imports and a warm-up that opens the connections are left out).
Each child keeps `width` Telegram sendMessage calls in flight (the requests built by the platform
module, as the worker builds them) for `seconds`, counting the answers:

- bare-httpx   the baseline of issue 15: a plain `httpx.AsyncClient` loop (pool sized to the width),
               `client.request` + `raise_for_status`, no sinks code (the bare loop of scenario b).
- httpx        `HttpSender(transport="httpx")`: httpx's pool as the sinks had it (100 connections).
- bare-aiohttp for reference: a plain `aiohttp.ClientSession` loop (connector sized to the width), no
               httpx: what keeping the httpx API costs on top of aiohttp.
- httpx-tuned  `HttpSender(transport="httpx-tuned")`: httpcore sized to the width, HTTP/1.1 only, ...
- httpx-sharded `HttpSender(transport="httpx-sharded")`: the tuned pool in shards of 4 connections.
- aiohttp      `HttpSender(transport="aiohttp")`: aiohttp's pool under the httpx API, sized to the width.

The `HttpSender` rows include the sender's own work (an `InboundResponse` per answer), which the
bare loop does not do. Figures: wall requests/s (bounded by the one-process sandbox on a shared
machine) and requests per CPU-second of the sending process (the steady one, what the sinks pay).
Rounds are interleaved and the median kept; the load average is reported with them.

    python -m bench.sinks.bench_transports [--widths 100,500] [--seconds 3] [--rounds 2]
                                           [--kinds bare-httpx,httpx,httpx-tuned,aiohttp]
                                           [--loop asyncio|uvloop] [--json FILE]

It is scenario d of `python -m bench.sinks.bench_sinks` (same options there: --transport-*).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from botstream.core.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("bare-httpx", "bare-aiohttp", "httpx", "httpx-tuned", "httpx-sharded", "aiohttp")
LOOPS = ("asyncio", "uvloop")  # the sinks worker runs Faust's default loop: asyncio's
SENDER_DEFAULT_CONNECTIONS = 100  # HttpSender's default: what the "httpx" row keeps, whatever the width


# -- child: one transport, one width ---------------------------------------------------------------
TOKEN = "123456:BENCH-token-tg"
CONTROL_TOKEN = secrets.token_urlsafe(16)  # the control API's token of the sandbox this module starts


def requests_for(url: str, count: int) -> list[Any]:
    """Telegram sendMessage calls as the sinks build them (the platform module), over 1,000 chats."""
    from botstream.core.bots import parse_bots
    from botstream.sinks.platforms import adapter_for

    bots = f'[[bots]]\nid = "tg"\nplatform = "telegram"\nsecret_token = "bench-secret"\ntoken = "{TOKEN}"\n' \
           f'api_base_url = "{url}"\n'
    bot = next(iter(parse_bots(bots).values()))
    adapter = adapter_for("telegram")
    return [adapter.build_request(bot, reply(n)) for n in range(count)]


def reply(n: int) -> dict[str, Any]:
    """A reply record as the sinks read it (the fields of bench_sinks.make_reply), chat n % 1000."""
    chat_id, now, update_id = str(40_000 + n % 1000), int(time.time() * 1000), f"{n:032x}"
    return {"reply_id": update_id, "chat_key": f"telegram:tg:{chat_id}", "platform": "telegram", "bot_id": "tg",
            "chat_id": chat_id, "chat_type": "private", "kind": "text",
            "text": f"reply {n} of the bench, of ordinary length", "markup": None, "options": {}, "reply_to": None,
            "target_message_id": None, "thread_id": None, "chat_seq": (n + 1) * 1000, "causation_id": update_id,
            "correlation_id": update_id[:16], "update_received_at_ms": now, "created_at_ms": now, "attempt": 0,
            "not_before_ms": 0, "first_error": None, "last_error": None, "platform_meta": {}, "traceparent": None}


async def drive(kind: str, url: str, width: int, seconds: float) -> dict[str, Any]:
    """Keep `width` calls in flight for `seconds` (after a warm-up), count the answers and the CPU."""
    import httpx

    from botstream.sinks.sender import HttpSender

    calls = requests_for(url, 2000)  # cycled; built before the clock starts
    failures: list[str] = []
    client: httpx.AsyncClient | None = None
    session: Any = None
    sender: HttpSender | None = None
    if kind == "bare-aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width),
                                        timeout=aiohttp.ClientTimeout(total=5.0))

        async def one(req: Any) -> None:
            try:
                async with session.request(req.method, req.url, headers=req.headers, data=req.content) as resp:
                    await resp.read()
                    resp.raise_for_status()
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
    elif kind == "bare-httpx":
        client = httpx.AsyncClient(timeout=5.0, limits=httpx.Limits(max_connections=width,
                                                                    max_keepalive_connections=width))

        async def one(req: Any) -> None:
            assert client is not None
            try:
                resp = await client.request(req.method, req.url, headers=dict(req.headers), content=req.content)
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
    else:
        sender = HttpSender(5.0, transport=kind,
                            max_connections=SENDER_DEFAULT_CONNECTIONS if kind == "httpx" else width)

        async def one(req: Any) -> None:
            assert sender is not None
            result = await sender.send("telegram", req)
            if result.response is None or result.response.status != 200:
                failures.append(str(result.failure or result.response))

    async def run(width: int, count: int | None, until: float | None) -> int:
        done = 0

        async def worker() -> None:
            nonlocal done
            while (count is None or done < count) and (until is None or time.perf_counter() < until):
                n, done = done, done + 1
                await one(calls[n % len(calls)])

        await asyncio.gather(*(worker() for _ in range(width)))
        return done

    # Not timed: opens the connections, 100 more at a time (500 connects at once time out behind
    # httpx's pool, whose CPU per call grows with the calls in flight).
    for step in range(100, width + 100, 100):
        await run(min(step, width), min(step, width), None)
    failures.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    total = await run(width, None, wall0 + seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if client is not None:
        await client.aclose()
    if session is not None:
        await session.close()
    if sender is not None:
        await sender.aclose()
    return {"kind": kind, "width": width, "requests": total, "failed": len(failures),
            "first_failure": failures[0] if failures else None, "seconds": round(wall, 3),
            "cpu_s": round(cpu, 3), "req_per_s": round(total / wall, 1), "req_per_cpu_s": round(total / cpu, 1)}


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True, choices=KINDS)
    parser.add_argument("--url", required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        runner: Any = uvloop.run
    else:
        runner = asyncio.run
    print(json.dumps(runner(drive(args.child, args.url, args.width, args.seconds))), flush=True)
    return 0


# -- parent: every transport at every width, interleaved rounds ---------------------------------------
@contextlib.contextmanager
def sandbox(log: Path) -> Iterator[str]:
    """The sandbox in a process of its own (as the sinks bench runs it), on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "botstream.sandbox", "--port", str(port), "--no-limits"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "BOTSTREAM_SANDBOX_TOKEN": CONTROL_TOKEN})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start; see {log}")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/_sandbox/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def reset_sandbox(url: str) -> None:
    """Limits off, deliveries forgotten: the control API, with the token `sandbox()` gave the sandbox."""
    import httpx

    platforms = ("telegram", "slack", "discord", "whatsapp")
    auth = {"X-Sandbox-Token": CONTROL_TOKEN}
    httpx.put(f"{url}/_sandbox/config", json={"limits": {p: {"enabled": False} for p in platforms}},
              headers=auth).raise_for_status()
    httpx.post(f"{url}/_sandbox/reset", headers=auth).raise_for_status()


def run_child(kind: str, url: str, width: int, seconds: float, loop: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.sinks.bench_transports", "--child", kind, "--url", url,
                           "--width", str(width), "--seconds", str(seconds), "--loop", loop],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} at {width}: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def compare(url: str, widths: list[int], seconds: float, rounds: int, kinds: list[str],
            loop: str = "asyncio", reset: Callable[[], None] | None = None) -> dict[str, Any]:
    """Every kind at every width, `rounds` interleaved rounds, the median of each figure.

    `reset()` before each run turns the sandbox's limits off and forgets the deliveries before (the
    caller's, when it started the sandbox and holds its control token)."""
    reset = reset or (lambda: reset_sandbox(url))
    load_before = os.getloadavg()
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for width in widths:
            for kind in kinds:
                reset()
                sample = run_child(kind, url, width, seconds, loop)
                samples.setdefault((kind, width), []).append(sample)
                print(json.dumps(sample), file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    rows = []
    for width in widths:
        base = statistics.median(s["req_per_cpu_s"] for s in samples.get(("bare-httpx", width), [])) \
            if ("bare-httpx", width) in samples else None
        for kind in kinds:
            got = samples[(kind, width)]
            per_cpu = statistics.median(s["req_per_cpu_s"] for s in got)
            rows.append({"kind": kind, "width": width,
                         "req_per_s": round(statistics.median(s["req_per_s"] for s in got), 1),
                         "req_per_cpu_s": round(per_cpu, 1),
                         "cpu_vs_bare_httpx": round(per_cpu / base, 2) if base else None,
                         "cpu_us_per_req": round(1e6 / per_cpu, 1),
                         "failed": sum(s["failed"] for s in got),
                         "rounds": [(s["req_per_s"], s["req_per_cpu_s"]) for s in got]})
    return {"scenario": f"d: HTTP transports vs the sandbox (limits off), sendMessage calls for {seconds:g}s per run, "
                        f"widths {','.join(map(str, widths))} in flight, median of {rounds} interleaved rounds, "
                        f"each in its own process ({loop} loop)",
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in load_after],
            "cpus": os.cpu_count(), "rows": rows}


def print_table(figure: dict[str, Any]) -> None:
    print(figure["scenario"])
    print(f"    load average before {figure['load_avg_before']}, after {figure['load_avg_after']}, "
          f"{figure['cpus']} CPUs")
    print(f"    {'transport':<14} {'width':>5} {'req/s':>9} {'req/CPU-s':>10} {'µs CPU/req':>10} "
          f"{'vs bare httpx':>13} {'failed':>6}")
    for r in figure["rows"]:
        print(f"    {r['kind']:<14} {r['width']:>5} {r['req_per_s']:>9} {r['req_per_cpu_s']:>10} "
              f"{r['cpu_us_per_req']:>10} {r['cpu_vs_bare_httpx']!s:>13} {r['failed']:>6}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--child" in argv:
        return child_main(argv)
    parser = argparse.ArgumentParser(prog="bench_transports", description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="100,500", help="requests in flight, comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed part of each run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="the senders' event loop")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-transports-") as tmp, sandbox(Path(tmp) / "sandbox.log") as url:
        figure = compare(url, [int(w) for w in args.widths.split(",")], args.seconds, args.rounds,
                         args.kinds.split(","), args.loop)
    print(json.dumps(figure), flush=True)
    if args.json:
        args.json.write_text(json.dumps([figure], indent=2))
    print()
    print_table(figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
