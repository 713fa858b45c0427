"""How well do the sinks use a platform's budget, how fast are they without one, how late are replies?

Everything real: a Kafka broker (embedded, unless KAFKA_BOOTSTRAP_SERVERS is set), the platform
sandbox in its own process, and one sinks worker process (`python -m botstream sinks`) per
scenario, on fresh topics:

(a) budget   Telegram defaults in the sandbox (30 msg/s per bot, ~1/s per chat), 1,000 chats with one
             reply each: the share of the 30 msg/s budget used while draining them, and 429s served.
(b) speed    sandbox limits off, the bot's limits lifted: deliveries per second of one worker, next to
             a bare httpx loop posting the very same requests to the same sandbox in the same run
             (same concurrency) — the ratio is what Kafka, ordering, the ledger and the results cost.
             Wall rates swing with whatever else the machine runs, so the figures per CPU-second of
             the worker process vs the bare loop's process are given too (the steadier ratio).
(c) latency  Telegram defaults, replies appended at half the budget (15/s) over random chats: p50/p99
             from the append to `replies` to the platform's acceptance (DeliveryResult.latency_ms,
             counted from the record's creation just before it is produced).
(d) HTTP transports  asked for by name (--only a,b,c,d): no broker, no worker; each transport the
             sinks can send with (`BOTSTREAM_SINKS_HTTP_TRANSPORT`) drives the sandbox (limits off)
             from a process of its own with 100 and 500 calls in flight, next to a bare httpx loop:
             requests/s and requests per CPU-second of the sending process
             (bench/sinks/bench_transports.py, which also runs alone).

    python -m bench.sinks.bench_sinks [--only a,b,c] [--chats 1000] [--speed-replies 3000]
                                      [--latency-seconds 15] [--transport-widths 100,500]
                                      [--transport-seconds 3] [--transport-rounds 2] [--json FILE]

Bounded: about two and a half minutes with the defaults on a 2-core machine; (d) about three more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer

from bench.sinks import bench_transports
from botstream.core.bots import parse_bots
from botstream.core.kafka import consumer_config, producer_config
from botstream.core.processes import die_with_parent, stop_process
from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import free_port
from botstream.schemas.codec import Codec
from botstream.sinks.platforms import adapter_for
from botstream.sinks.sender import HttpSender  # noqa: F401 - same httpx set-up for the bare loop as for the worker

ROOT = Path(__file__).resolve().parents[2]
CODEC = Codec()
TOKEN = "123456:BENCH-token-tg"
BUDGET = 30.0


def bots_toml(sandbox_url: str, limits: str = "") -> str:
    return f'''
[[bots]]
id = "tg"
platform = "telegram"
secret_token = "bench-secret"
token = "{TOKEN}"
api_base_url = "{sandbox_url}"
coalesce = false
{("[bots.limits]" + chr(10) + limits) if limits else ""}
'''


def make_reply(chat_id: str, index: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    update_id = uuid.uuid4().hex
    return {
        "reply_id": hashlib.blake2b(f"bench|{update_id}".encode(), digest_size=16).hexdigest(),
        "chat_key": f"telegram:tg:{chat_id}", "platform": "telegram", "bot_id": "tg", "chat_id": chat_id,
        "chat_type": "private", "kind": "text", "text": f"reply {index} of the bench, of ordinary length",
        "markup": None, "options": {}, "reply_to": None, "target_message_id": None, "thread_id": None,
        "chat_seq": (index + 1) * 1000, "causation_id": update_id, "correlation_id": update_id[:16],
        "update_received_at_ms": now, "created_at_ms": now, "attempt": 0, "not_before_ms": 0,
        "first_error": None, "last_error": None, "platform_meta": {}, "traceparent": None,
    }


@dataclass
class Env:
    bootstrap: str
    sandbox_url: str
    tmp: Path


@contextlib.contextmanager
def broker(tmp: Path) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from botstream.ops.embedded_kafka import EmbeddedKafka

    kafka = EmbeddedKafka(tmp / "kafka", port=None, heap="384m", tie_to_parent=True)
    bootstrap = kafka.start(timeout=120)
    try:
        yield bootstrap
    finally:
        kafka.stop()


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A child of ours: logged to a file, killed with us, stopped by its pid."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                                preexec_fn=die_with_parent)
    try:
        yield proc
    finally:
        stop_process(proc, grace=20)


SANDBOX_TOKEN = secrets.token_urlsafe(16)  # the control API's token of the sandbox this bench starts
CONTROL_AUTH = {"X-Sandbox-Token": SANDBOX_TOKEN}


@contextlib.contextmanager
def sandbox(tmp: Path) -> Iterator[str]:
    port = free_port()
    with process(["-m", "botstream.sandbox", "--port", str(port)], tmp / "sandbox.log",
                 {"BOTSTREAM_SANDBOX_TOKEN": SANDBOX_TOKEN}):
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_sandbox/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url


def control(url: str, *, limits: bool) -> None:
    """Reset the sandbox (deliveries, stats, limiter state) and switch its limits on or off."""
    platforms = ("telegram", "slack", "discord", "whatsapp")
    httpx.put(f"{url}/_sandbox/config", json={"limits": {p: {"enabled": limits} for p in platforms}},
              headers=CONTROL_AUTH).raise_for_status()
    httpx.post(f"{url}/_sandbox/reset", headers=CONTROL_AUTH).raise_for_status()


@contextlib.contextmanager
def sinks_worker(env: Env, name: str, limits: str = "") -> Iterator[tuple[Settings, int]]:
    """A worker on fresh topics, ready (consuming) when this yields its settings and pid."""
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    settings = Settings.from_env({}, kafka_bootstrap_servers=env.bootstrap, topic_prefix=prefix, partitions=4)
    report = apply_catalog(settings, env.bootstrap)
    if not report.ok:
        raise RuntimeError(report.errors)
    bots = env.tmp / f"bots-{name}.toml"
    bots.write_text(bots_toml(env.sandbox_url, limits))
    port = free_port()
    worker_env = {"KAFKA_BOOTSTRAP_SERVERS": env.bootstrap, "BOTSTREAM_TOPIC_PREFIX": prefix,
                  "BOTSTREAM_PARTITIONS": "4", "BOTSTREAM_BOTS_FILE": str(bots),
                  "BOTSTREAM_DATA_DIR": str(env.tmp / f"data-{name}"), "BOTSTREAM_SINKS_WEB_PORT": str(port),
                  "BOTSTREAM_LOG_LEVEL": "WARNING"}
    with process(["-m", "botstream", "sinks"], env.tmp / f"sinks-{name}.log", worker_env) as proc:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sinks worker did not start; see {env.tmp / f'sinks-{name}.log'}")
            with contextlib.suppress(httpx.HTTPError):
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                if "botstream_sinks_owned_partitions 4.0" in text:
                    break
            time.sleep(0.3)
        # Owning partitions is not consuming yet (table recovery comes first): one reply through
        # before the clock starts, so start-up is not measured as latency.
        warmup = make_reply("1", 0)
        produce(env.bootstrap, settings.topic("replies"), [warmup])
        if not results(env.bootstrap, settings.topic("deliveries"), 1, timeout=60):
            raise RuntimeError("the warm-up reply was not delivered")
        httpx.post(f"{env.sandbox_url}/_sandbox/reset", headers=CONTROL_AUTH).raise_for_status()
        yield settings, proc.pid


_PRODUCERS: dict[str, Producer] = {}


def _client_settings(bootstrap: str) -> Settings:
    return Settings.from_env({}, kafka_bootstrap_servers=bootstrap)


def produce(bootstrap: str, topic: str, replies: list[dict[str, Any]], rate: float | None = None) -> None:
    # One producer for the whole run: a new one spends its first half second fetching metadata and
    # its idempotence id, which would be measured as the first replies' latency.
    producer = _PRODUCERS.get(bootstrap)
    if producer is None:
        producer = _PRODUCERS[bootstrap] = Producer(producer_config(
            _client_settings(bootstrap), client_id="botstream-bench", linger_ms=2))
    start = time.monotonic()
    for n, reply in enumerate(replies):
        if rate:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            reply = {**reply, "update_received_at_ms": int(time.time() * 1000)}  # the append time
        producer.produce(topic, key=reply["chat_key"].encode(), value=CODEC.encode("reply", reply))
        producer.poll(0)
    producer.flush(60)


def results(bootstrap: str, topic: str, count: int, timeout: float, skip_chat: str = "telegram:tg:1") -> list[dict[str, Any]]:
    """`count` delivery results (the warm-up chat's left out), or what came within `timeout`."""
    consumer = Consumer(consumer_config(_client_settings(bootstrap), f"bench-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                if not msg.error():
                    result = CODEC.decode("delivery_result", msg.value() or b"")
                    if result["chat_key"] != skip_chat or count == 1:
                        out.append(result)
    finally:
        consumer.close()
    return out


def sandbox_view(url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    deliveries = httpx.get(f"{url}/_sandbox/deliveries", timeout=30).json()["deliveries"]
    return deliveries, httpx.get(f"{url}/_sandbox/stats", timeout=10).json()


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (/proc), steady under other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady_rate(arrivals_ms: list[int], trim: float = 0.05) -> float:
    """Messages per second between the first and last `trim` share (start-up and tail cut off)."""
    arrivals_ms = sorted(arrivals_ms)
    cut = int(len(arrivals_ms) * trim)
    core = arrivals_ms[cut:len(arrivals_ms) - cut]
    span = (core[-1] - core[0]) / 1000
    return (len(core) - 1) / span if span > 0 else float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# -- scenarios ---------------------------------------------------------------------------------------
def budget(env: Env, chats: int) -> dict[str, Any]:
    control(env.sandbox_url, limits=True)
    replies = [make_reply(str(10_000 + c), 0) for c in range(chats)]
    with sinks_worker(env, "budget") as (settings, _):
        started = time.monotonic()
        produce(env.bootstrap, settings.topic("replies"), replies)
        got = results(env.bootstrap, settings.topic("deliveries"), len(replies), timeout=120)
        took = time.monotonic() - started
    deliveries, stats = sandbox_view(env.sandbox_url)
    rate = steady_rate([d["arrival_ms"] for d in deliveries])
    return {"scenario": f"a: Telegram defaults, 1 reply to each of {chats} chats", "replies": len(replies),
            "delivered": sum(r["outcome"] == "delivered" for r in got), "seconds": round(took, 1),
            "msg_per_s": round(rate, 2), "budget_share": round(rate / BUDGET, 3),
            "429s": stats["rate_limited_total"], "order_violations": stats["order_violations"]}


def speed(env: Env, total: int, chats: int = 200, concurrency: int = 64) -> dict[str, Any]:
    control(env.sandbox_url, limits=False)
    per_chat = total // chats
    replies = [make_reply(str(20_000 + c), i) for i in range(per_chat) for c in range(chats)]
    lifted = "global_per_second = 1000000\nper_chat_per_second = 1000000\nper_chat_burst = 1000000\n" \
             "per_group_per_minute = 1000000"
    with sinks_worker(env, "speed", lifted) as (settings, pid):
        cpu_before = cpu_seconds(pid)
        produce(env.bootstrap, settings.topic("replies"), replies)
        got = results(env.bootstrap, settings.topic("deliveries"), len(replies), timeout=120)
        sink_cpu = cpu_seconds(pid) - cpu_before
    deliveries, stats = sandbox_view(env.sandbox_url)
    sink_rate = steady_rate([d["arrival_ms"] for d in deliveries])
    bare_rate = bare_per_cpu = 0.0
    for width in sorted({8, concurrency}):  # the bare loop's best: httpx's pool costs more when wide
        control(env.sandbox_url, limits=False)
        cpu_before = time.process_time()
        rate = asyncio.run(bare_loop(env.sandbox_url, replies, width))
        bare_rate = max(bare_rate, rate)
        bare_per_cpu = max(bare_per_cpu, len(replies) / (time.process_time() - cpu_before))
    delivered = sum(r["outcome"] == "delivered" for r in got)
    sink_per_cpu = delivered / sink_cpu
    return {"scenario": f"b: limits off, {len(replies)} replies over {chats} chats (worker: {concurrency} chats "
                        "at once; bare loop: best of 8 and 64 at once)",
            "delivered": delivered, "sink_deliveries_per_s": round(sink_rate, 1),
            "bare_httpx_requests_per_s": round(bare_rate, 1), "wall_ratio": round(sink_rate / bare_rate, 3),
            "sink_per_cpu_s": round(sink_per_cpu, 1), "bare_per_cpu_s": round(bare_per_cpu, 1),
            "cpu_ratio": round(sink_per_cpu / bare_per_cpu, 3), "order_violations": stats["order_violations"]}


async def bare_loop(url: str, replies: list[dict[str, Any]], concurrency: int) -> float:
    """The same requests (built by the same platform module) from one process, `concurrency` at once."""
    bot = next(iter(parse_bots(bots_toml(url)).values()))
    adapter = adapter_for("telegram")
    requests = [adapter.build_request(bot, r) for r in replies]
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for req in requests:
        queue.put_nowait(req)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as client:
        async def worker() -> None:
            while not queue.empty():
                req = queue.get_nowait()
                resp = await client.request(req.method, req.url, headers=dict(req.headers), content=req.content)
                resp.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(requests) / (time.perf_counter() - started)


def latency(env: Env, chats: int, seconds: float) -> dict[str, Any]:
    control(env.sandbox_url, limits=True)
    rate = BUDGET / 2
    rng = random.Random(7)
    count = int(rate * seconds)
    seq: dict[str, int] = {}
    replies = []
    for _ in range(count):
        chat = str(30_000 + rng.randrange(chats))
        seq[chat] = seq.get(chat, -1) + 1
        replies.append(make_reply(chat, seq[chat]))
    with sinks_worker(env, "latency") as (settings, _):
        produce(env.bootstrap, settings.topic("replies"), replies, rate=rate)
        got = results(env.bootstrap, settings.topic("deliveries"), len(replies), timeout=60)
    _, stats = sandbox_view(env.sandbox_url)
    lat = [float(r["latency_ms"]) for r in got if r["latency_ms"] is not None]
    return {"scenario": f"c: {rate:g} replies/s (half the budget) over {chats} chats for {seconds:g}s",
            "delivered": len(lat), "p50_ms": round(statistics.median(lat), 1), "p99_ms": round(percentile(lat, 99), 1),
            "max_ms": round(max(lat), 1), "429s": stats["rate_limited_total"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_sinks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c", help="scenarios to run (a,b,c,d)")
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--speed-replies", type=int, default=3000)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--transport-widths", default="100,500", help="(d) calls in flight, comma-separated")
    parser.add_argument("--transport-seconds", type=float, default=3.0, help="(d) timed part of each run")
    parser.add_argument("--transport-rounds", type=int, default=2, help="(d) interleaved rounds (median kept)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-sinks-") as tmp_name:
        tmp = Path(tmp_name)
        # (d) needs no broker: none is started for it alone
        with (broker(tmp) if only & {"a", "b", "c"} else contextlib.nullcontext("")) as bootstrap, \
                sandbox(tmp) as url:
            env = Env(bootstrap, url, tmp)
            if "a" in only:
                figures.append(budget(env, args.chats))
                print(json.dumps(figures[-1]), flush=True)
            if "b" in only:
                figures.append(speed(env, args.speed_replies))
                print(json.dumps(figures[-1]), flush=True)
            if "c" in only:
                figures.append(latency(env, args.chats, args.latency_seconds))
                print(json.dumps(figures[-1]), flush=True)
            if "d" in only:
                figures.append(bench_transports.compare(
                    url, [int(w) for w in args.transport_widths.split(",")], args.transport_seconds,
                    args.transport_rounds, list(bench_transports.KINDS),
                    reset=lambda: control(url, limits=False)))
                print(json.dumps(figures[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print()
    for f in figures:
        if "rows" in f:
            bench_transports.print_table(f)
            continue
        print(f["scenario"])
        print("    " + ", ".join(f"{k}={v}" for k, v in f.items() if k != "scenario"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
