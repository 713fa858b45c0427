"""How fast is ingest, next to the ceilings it lives under? One run, every figure, ratios printed.

Figures (servers in subprocesses pinned to CPU 0, load from CPU 1, loopback):
1. bare HTTP ceiling — the same uvicorn + httptools + uvloop stack answering 200 with no work (the
   baseline every ratio divides by);
2. raw Kafka ceiling — confluent-kafka producing the same encoded records, same producer settings,
   one delivery callback per record, no HTTP;
3. naive handler — the same app with a sink that flushes the producer per request (awaited in a
   thread, and plain blocking) instead of the poll thread and per-request futures;
4. botstream ingest at saturation — the real app with its JSON access log and metrics — and the same
   app with a sink that acks at once, which splits ingest's CPU per request into HTTP, app, producer;
5. ingest ACK latency (request sent -> 2xx received) at 500 and 1,000 req/s offered, open loop.

Load: `wrk` (one thread, Lua script with unique signed Telegram updates) when it is on PATH — on the
development machine it was installed by hand (`apt-get install -y wrk`), it is not a project
dependency — else a built-in asyncio HTTP/1.1 generator. Plain wrk cannot hold a constant rate, so
the fixed-rate runs always use the asyncio generator (open loop, latency from each request's due
time, wrk2-style). The broker is an embedded Kafka started here (its JVM pinned to the load CPU)
unless KAFKA_BOOTSTRAP_SERVERS is set; everything started is stopped at the end.

    python -m bench.ingest.bench_ingest [--seconds 3] [--rounds 3] [--latency-seconds 8] [--connections 64]
        [--loader auto|wrk|python] [--linger-ms N] [--compression none|lz4] [--sweep] [--json FILE]

Targets: saturation >= 50 % of the bare ceiling; p99 ACK <= 20 ms at 1,000 req/s; >= 10x naive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import loadgen
from bench.ingest.servers import LOADER_CPU, pin
from botstream.core.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")
BOTS = f"""
[[bots]]
id = "bench"
platform = "telegram"
secret_token = "{loadgen.SECRET}"
token = "123456:BENCH"
"""


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Figure:
    name: str
    rate: float
    cpu_rate: float | None = None
    non_2xx: int = 0
    errors: int = 0


class Bench:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> None:
        self.args = args
        self.env = env
        self.workdir = workdir
        self.use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk") is not None)
        self.next_id = 1_000_000

    def ids(self, n: int = 10_000_000) -> int:
        """A fresh block of update ids, so every request of the run is a distinct update."""
        first, self.next_id = self.next_id, self.next_id + n
        return first

    @contextmanager
    def server(self, kind: str, overrides: dict[str, Any] | None = None) -> Iterator[Server]:
        port = _free_port()
        log = (self.workdir / f"{kind}-{port}.log").open("wb")
        env = {**self.env, "BENCH_PRODUCER_OVERRIDES": json.dumps(overrides or {})}
        proc = subprocess.Popen([sys.executable, "-m", "bench.ingest.servers", "serve", kind, str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            probe = "/readyz" if kind == "ingest" else None
            _wait_listening(port, proc, probe)
            yield Server(kind, port, proc)
        finally:
            stop_process(proc, grace=15)
            log.close()

    def load(self, server: Server, seconds: float) -> loadgen.Result:
        if self.use_wrk:
            return loadgen.run_wrk(server.port, seconds, self.args.connections, self.ids(), lambda: pin(LOADER_CPU))
        return loadgen.run_async(loadgen.saturate(server.port, seconds, self.args.connections, self.ids()))

    def saturate(self, server: Server, seconds: float, name: str) -> Figure:
        """Closed-loop saturation; also requests per CPU-second the server process (all its threads)
        used, which holds steadier than wall rates on a machine shared with other work."""
        before = server.cpu_seconds()
        result = self.load(server, seconds)
        cpu = server.cpu_seconds() - before
        return Figure(name, result.rate, result.requests / cpu if cpu else None, result.non_2xx, result.errors)

    def fixed_rate(self, server: Server, rate: float, seconds: float) -> tuple[loadgen.Result, dict[str, float]]:
        """Client-observed latencies, and the server's own view (its ack_seconds histogram over the run:
        request received -> response sent, free of the load generator's scheduling delays)."""
        loadgen.run_async(loadgen.fixed_rate(server.port, rate, 1.0, self.ids()))  # warm-up at the rate
        before = ack_histogram(server.port)
        result = loadgen.run_async(loadgen.fixed_rate(server.port, rate, seconds, self.ids()))
        after = ack_histogram(server.port)
        delta = {le: after[le] - before.get(le, 0.0) for le in after}
        return result, {"p50": histogram_quantile(delta, 0.5), "p99": histogram_quantile(delta, 0.99)}

    def kafka_ceiling(self, seconds: float, overrides: dict[str, Any] | None = None) -> Figure:
        env = {**self.env, "BENCH_PRODUCER_OVERRIDES": json.dumps(overrides or {})}
        out = subprocess.run([sys.executable, "-m", "bench.ingest.servers", "kafka", str(seconds)], cwd=ROOT,
                             env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        return Figure(KAFKA, result["rate"], result["acked"] / result["cpu_seconds"], errors=result["failed"])


def ack_histogram(port: int) -> dict[float, float]:
    """Cumulative bucket counts of botstream_ingest_ack_seconds (platform telegram), by upper bound."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("botstream_ingest_ack_seconds_bucket{") and 'platform="telegram"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """Prometheus-style quantile in milliseconds: linear interpolation inside the bucket holding it."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower * 1000
            return (lower + (le - lower) * (rank - below) / max(count - below, 1e-9)) * 1000
        lower, below = le, count
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], probe: str | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if probe is None:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            elif httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code == 200:
                return
        except (OSError, httpx.TransportError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} not ready after {timeout:.0f}s")


@contextmanager
def broker(workdir: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, description): KAFKA_BOOTSTRAP_SERVERS, or an embedded broker we stop."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, f"external cluster {external}"
        return
    from botstream.ops.embedded_kafka import EmbeddedKafka

    kafka = EmbeddedKafka(workdir / "kafka", port=None, heap="768m", tie_to_parent=True)
    bootstrap = kafka.start(timeout=120)
    try:
        pid = kafka.nodes[0].pid()
        if pid is not None and (os.cpu_count() or 1) > LOADER_CPU:
            for task in os.listdir(f"/proc/{pid}/task"):  # every JVM thread, not just the main one
                try:
                    os.sched_setaffinity(int(task), {LOADER_CPU})
                except OSError:
                    pass
        yield bootstrap, f"embedded Kafka {kafka.version} (JVM pinned to CPU {LOADER_CPU})"
    finally:
        kafka.stop()


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per saturation measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--latency-seconds", type=float, default=8.0, help="per fixed-rate measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--linger-ms", type=int, help="override ingest's linger.ms (default: botstream.ingest.producer)")
    parser.add_argument("--compression", choices=["none", "lz4", "zstd", "snappy"], help="override compression.type")
    parser.add_argument("--sweep", action="store_true", help="also compare linger.ms x compression (+~100 s)")
    parser.add_argument("--json", metavar="FILE", help="also write the final JSON to FILE")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.linger_ms is not None:
        overrides["linger.ms"] = args.linger_ms
    if args.compression:
        overrides["compression.type"] = args.compression
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        with broker(workdir) as (bootstrap, broker_text):
            report = run(args, overrides, workdir, bootstrap, broker_text)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    line = json.dumps(report)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    return 0


SATURATION = (("bare", "bare HTTP ceiling (baseline)"), ("naive", "naive: awaited flush per request"),
              ("naive-blocking", "naive: blocking flush per request"),
              ("ingest-no-kafka", "ingest app, sink acking at once"), ("ingest", "botstream ingest, saturation"))
KAFKA = "raw Kafka ceiling (no HTTP)"


def median_figure(name: str, samples: list[Figure]) -> Figure:
    cpu = [f.cpu_rate for f in samples if f.cpu_rate]
    return Figure(name, statistics.median(f.rate for f in samples), statistics.median(cpu) if cpu else None,
                  sum(f.non_2xx for f in samples), sum(f.errors for f in samples))


def run(args: argparse.Namespace, overrides: dict[str, Any], workdir: Path, bootstrap: str,
        broker_text: str) -> dict[str, Any]:
    from botstream.core.settings import Settings
    from botstream.ops.admin import apply_catalog

    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    settings = Settings.from_env({}, kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=6)
    report = apply_catalog(settings, bootstrap)
    if not report.ok:
        raise SystemExit(f"cannot create the bench topics: {report.errors}")
    bots_file = workdir / "bots.toml"
    bots_file.write_text(BOTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "BOTSTREAM_TOPIC_PREFIX": prefix, "BOTSTREAM_PARTITIONS": "6", "BOTSTREAM_BOTS_FILE": str(bots_file)}
    bench = Bench(args, env, workdir)
    loader = ("wrk (on PATH; installed by hand on the dev machine with `apt-get install -y wrk`)" if bench.use_wrk
              else "the built-in asyncio generator (wrk not on PATH)")
    print(f"ingest bench: saturation by {loader}, {args.connections} connections, {args.rounds} interleaved "
          f"rounds x {args.seconds:g} s, medians;")
    print(f"  fixed-rate runs by the asyncio open-loop generator; broker: {broker_text}; servers pinned to CPU 0")
    if overrides:
        print(f"  producer overrides: {overrides}")

    samples: dict[str, list[Figure]] = {name: [] for _, name in SATURATION}
    samples[KAFKA] = []
    latency: dict[int, loadgen.Result] = {}
    server_side: dict[int, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(bench.server(kind, overrides if kind == "ingest" else None))
                   for kind, _ in SATURATION}
        for server in servers.values():
            bench.load(server, 1.0)  # warm-up: connections, caches, the producers' first batches
        for _ in range(args.rounds):  # interleaved, so the machine's background noise spreads evenly
            for kind, name in SATURATION:
                seconds = min(args.seconds, 2.0) if kind == "naive-blocking" else args.seconds
                samples[name].append(bench.saturate(servers[kind], seconds, name))
            samples[KAFKA].append(bench.kafka_ceiling(args.seconds, overrides))
        for rate in (500, 1000):
            latency[rate], server_side[rate] = bench.fixed_rate(servers["ingest"], rate, args.latency_seconds)

    figures = {name: median_figure(name, group) for name, group in samples.items()}
    bare, kafka = figures[SATURATION[0][1]], figures[KAFKA]
    naive, naive_blocking, no_kafka, ingest = (figures[name] for _, name in SATURATION[1:])
    print(f"\n  {'figure':<38} {'req/s':>9} {'req/CPU-s':>10} {'vs bare':>8} {'vs bare/CPU':>12}  non-2xx/errors")
    for fig in (bare, kafka, naive, naive_blocking, no_kafka, ingest):
        cpu = f"{fig.cpu_rate:,.0f}" if fig.cpu_rate else "-"
        cpu_ratio = _ratio(fig.cpu_rate, bare.cpu_rate) if fig.cpu_rate and bare.cpu_rate else "-"
        print(f"  {fig.name:<38} {fig.rate:>9,.0f} {cpu:>10} {_ratio(fig.rate, bare.rate):>8} {cpu_ratio:>12}  "
              f"{fig.non_2xx}/{fig.errors}")
    if bare.cpu_rate and no_kafka.cpu_rate and ingest.cpu_rate:
        http_us, app_us = 1e6 / bare.cpu_rate, 1e6 / no_kafka.cpu_rate - 1e6 / bare.cpu_rate
        kafka_us = 1e6 / ingest.cpu_rate - 1e6 / no_kafka.cpu_rate
        print(f"  CPU per request: HTTP stack {http_us:.0f} us + verify/normalize/encode/log/metrics {app_us:.0f} us"
              f" + producer path {kafka_us:.0f} us = {1e6 / ingest.cpu_rate:.0f} us")
    print(f"  {'ingest vs naive (awaited flush)':<38} {ingest.rate / naive.rate:>8.1f}x")
    print(f"  {'ingest vs naive (blocking flush)':<38} {ingest.rate / naive_blocking.rate:>8.1f}x")
    for rate, run_ in latency.items():
        print(f"  ACK latency at {rate:>5} req/s offered, client: {loadgen.summary(run_)}; "
              f"n={run_.requests}, non-2xx {run_.non_2xx}, errors {run_.errors}")
        print(f"  {'':>32} server (ack_seconds histogram): p50 {server_side[rate]['p50']:.2f} ms, "
              f"p99 {server_side[rate]['p99']:.2f} ms")
    targets = {
        "saturation_ge_50pct_of_bare": ingest.rate >= 0.5 * bare.rate,
        "p99_le_20ms_at_1000_server": server_side[1000]["p99"] <= 20.0,
        "p99_le_20ms_at_1000_client": latency[1000].percentile(99) <= 20.0,
        "ge_10x_naive": ingest.rate >= 10 * naive.rate,
        "no_errors": ingest.non_2xx == ingest.errors == 0 and all(r.non_2xx == r.errors == 0 for r in latency.values()),
    }
    print("  targets: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in targets.items()))
    result: dict[str, Any] = {
        "bench": "ingest", "loader": "wrk" if bench.use_wrk else "python", "connections": args.connections,
        "rounds": args.rounds, "seconds": args.seconds, "producer_overrides": overrides,
        "rps": {"bare": round(bare.rate), "kafka_ceiling": round(kafka.rate), "naive_awaited_flush": round(naive.rate),
                "naive_blocking_flush": round(naive_blocking.rate), "ingest_no_kafka": round(no_kafka.rate),
                "ingest": round(ingest.rate)},
        "req_per_cpu_s": {"bare": _round(bare.cpu_rate), "kafka_ceiling": _round(kafka.cpu_rate),
                          "naive_awaited_flush": _round(naive.cpu_rate),
                          "naive_blocking_flush": _round(naive_blocking.cpu_rate),
                          "ingest_no_kafka": _round(no_kafka.cpu_rate), "ingest": _round(ingest.cpu_rate)},
        "ratio": {"ingest_vs_bare": round(ingest.rate / bare.rate, 3),
                  "ingest_vs_bare_per_cpu": round(ingest.cpu_rate / bare.cpu_rate, 3)
                  if ingest.cpu_rate and bare.cpu_rate else None,
                  "ingest_vs_naive": round(ingest.rate / naive.rate, 1),
                  "ingest_vs_naive_blocking": round(ingest.rate / naive_blocking.rate, 1),
                  "ingest_vs_kafka_ceiling": round(ingest.rate / kafka.rate, 3)},
        "ack_latency_ms": {str(rate): {"p50": round(r.percentile(50), 2), "p99": round(r.percentile(99), 2),
                                       "p99_from_due": round(r.percentile(99, True), 2),
                                       "max": round(max(r.latencies_ms), 2) if r.latencies_ms else None,
                                       "n": r.requests, "errors": r.errors + r.non_2xx,
                                       "server_p50": round(server_side[rate]["p50"], 2),
                                       "server_p99": round(server_side[rate]["p99"], 2)}
                           for rate, r in latency.items()},
        "targets": targets,
    }
    if args.sweep:
        result["sweep"] = sweep(bench, args)
    return result


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def sweep(bench: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Saturation and latency at 1,000 req/s per linger.ms x compression: how the defaults were chosen."""
    rows = []
    print(f"\n  sweep {'linger.ms':>9} {'compression':>11} {'saturation req/s':>17} {'req/CPU-s':>10} "
          f"{'p50@1000':>9} {'p99@1000':>9}")
    for linger in (0, 1, 2, 5):
        for compression in ("none", "lz4"):
            overrides = {"linger.ms": linger, "compression.type": compression}
            with bench.server("ingest", overrides) as server:
                bench.load(server, 1.0)
                fig = bench.saturate(server, args.seconds, "sweep")
                lat, _ = bench.fixed_rate(server, 1000, 4.0)
            rows.append({"linger_ms": linger, "compression": compression, "rps": round(fig.rate),
                         "req_per_cpu_s": _round(fig.cpu_rate),
                         "p50_ms": round(lat.percentile(50), 2), "p99_ms": round(lat.percentile(99), 2)})
            print(f"  sweep {linger:>9} {compression:>11} {fig.rate:>17,.0f} {fig.cpu_rate or 0:>10,.0f} "
                  f"{lat.percentile(50):>9.2f} {lat.percentile(99):>9.2f}")
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
