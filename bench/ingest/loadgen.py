"""Load generators for the ingest bench: `wrk` with a Lua script (saturation), and an asyncio HTTP/1.1
client for fixed-rate runs (and for saturation when wrk is missing).

Every request is a Telegram update with a unique update_id, signed with the bot's secret token, so
the server does the full work: verify, parse, normalize, encode, produce, wait for the ack.

The fixed-rate generator is open-loop, like wrk2: request i is due at start + i/rate whatever happened
to earlier ones, and its latency is measured from that due time, so a stall shows up in the
percentiles instead of silently lowering the offered rate (coordinated omission).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

PATH = "/webhooks/telegram/bench"
SECRET = "bench-secret-token"
TEXT = "hello from the bench, an ordinary chat message"
BODY = ('{"update_id":%d,"message":{"message_id":%d,"date":1700000000,"chat":{"id":%d,"type":"private"},'
        '"from":{"id":%d,"is_bot":false,"first_name":"Bench","language_code":"en"},"text":"' + TEXT + '"}}')
CHATS = 1000


def body(update_id: int) -> bytes:
    chat = update_id % CHATS + 1
    return (BODY % (update_id, update_id, chat, chat)).encode()


def request(update_id: int) -> bytes:
    payload = body(update_id)
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload


@dataclass
class Result:
    requests: int
    seconds: float
    non_2xx: int
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    due_latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float, from_due: bool = False) -> float:
        samples = self.due_latencies_ms if from_due else self.latencies_ms
        if not samples:
            return float("nan")
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# -- wrk ---------------------------------------------------------------------------------------------

def lua_script(first_id: int) -> str:
    body_lua = BODY.replace('"', '\\"')
    return f"""
local counter = {first_id}
local headers = {{}}
headers["Content-Type"] = "application/json"
headers["X-Telegram-Bot-Api-Secret-Token"] = "{SECRET}"
request = function()
  counter = counter + 1
  local chat = counter % {CHATS} + 1
  return wrk.format("POST", "{PATH}", headers, string.format("{body_lua}", counter, counter, chat, chat))
end
"""


def run_wrk(port: int, seconds: float, connections: int, first_id: int, pin: Callable[[], None]) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(first_id))
    try:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name,
               f"http://127.0.0.1:{port}"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, preexec_fn=pin).stdout
    finally:
        os.unlink(script.name)
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds_run = float(total.group(2)) / (1000.0 if total.group(3) == "ms" else 1.0)
    return Result(int(total.group(1)), seconds_run, int(bad.group(1)) if bad else 0,
                  sum(int(x) for x in errors.groups()) if errors else 0)


# -- asyncio HTTP/1.1 client ----------------------------------------------------------------------------

async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bool:
    writer.write(data)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status.startswith(b"HTTP/1.1 2")


async def saturate(port: int, seconds: float, connections: int, first_id: int) -> Result:
    """Closed loop: every connection sends its next request as soon as the previous one is answered."""
    done = bad = 0
    next_id = first_id
    stop_at = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal done, bad, next_id
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop_at:
            next_id += 1
            ok = await _exchange(reader, writer, request(next_id))
            done += 1
            bad += not ok
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return Result(done, time.monotonic() - started, bad)


async def fixed_rate(port: int, rate: float, seconds: float, first_id: int, connections: int = 32) -> Result:
    """Open loop at `rate` req/s. Each request's latency is kept twice: from the moment it was written
    (`latencies_ms`: what the server took) and from its due time (`due_latencies_ms`: includes any
    wait for a free connection or a late timer, as wrk2 counts it)."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    result = Result(0, seconds, 0)
    clock = time.perf_counter

    async def one(update_id: int, due: float) -> None:
        reader, writer = await pool.get()
        sent = clock()
        try:
            ok = await _exchange(reader, writer, request(update_id))
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
            return
        done = clock()
        result.latencies_ms.append((done - sent) * 1000)
        result.due_latencies_ms.append((done - due) * 1000)
        result.requests += 1
        result.non_2xx += not ok
        pool.put_nowait((reader, writer))

    total = int(rate * seconds)
    start = clock() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(first_id + i, due)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return result


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def summary(result: Result) -> str:
    if not result.latencies_ms:
        return "no samples"
    return (f"p50 {result.percentile(50):.2f} ms, p99 {result.percentile(99):.2f} ms, "
            f"max {max(result.latencies_ms):.2f} ms (from due time: p99 {result.percentile(99, True):.2f} ms)")

