"""`make soak`: the whole pipeline under steady load for a long time — do latency, memory and lag stay flat?

The end-to-end topology (bench/e2e/topology.py: ingest, a streams worker, a sinks worker, the sandbox
with limits off, an embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set) takes signed Telegram
webhooks at `--rate` updates/s (default 400/s, about half of what the pipeline delivers at saturation
on the 2-core development machine: `python -m bench --only e2e`) for `--minutes` (default 30). Every
`--every` seconds (default 60) it records, for the window just ended:

- update → delivered p50 / p99 (the sandbox's arrival of the reply minus the update's first send);
- RSS of each process (ingest, streams, sinks, sandbox, Kafka) and its CPU cores;
- consumer lag of the streams and sinks groups (records not committed yet, all partitions).

At the end, flatness: the last third of the windows against the first third (after the first window,
a warm-up): p99 latency, each process's RSS and the lag must not have grown by more than `--tolerance`
(default 50 %, plus small absolute slack: 25 ms, 32 MiB, 2 checkpoints' worth of records). A table and
one JSON line are printed; nothing is asserted (it is not part of CI). Written to bench/results/soak-<UTC>.md.

    python -m bench.soak [--rate 400] [--minutes 30] [--every 60] [--chats 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench.e2e.load import LoadRun, delivered_index, percentile
from bench.e2e.topology import Topology
from bench.streams.procstat import status_kib
from botstream.core.kafka import admin_config
from botstream.core.settings import Settings
from botstream.ops.lag import botstream_groups, consumer_lag

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(topo: Topology) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, svc in topo.services.items():
        pid = svc.pid
        if pid is not None:
            out[name] = round(_rss_kib(pid) / 1024, 1)
    if topo.kafka is not None:
        out["kafka"] = round(sum(_rss_kib(p) for n in topo.kafka.nodes if (p := n.pid())) / 1024, 1)
    return out


def _rss_kib(pid: int) -> int:
    try:
        return status_kib(pid, "VmRSS")
    except OSError:  # gone (restarted) between the listing and the read
        return 0


def lag_total(admin: AdminClient, settings: Settings) -> dict[str, int]:
    totals: dict[str, int] = {}
    for lag in consumer_lag(admin, botstream_groups(settings)):
        totals[lag.group] = totals.get(lag.group, 0) + lag.lag
    return {group.rsplit("-", 1)[-1]: n for group, n in totals.items()}


def grew(first: float | None, last: float | None, tolerance: float, slack: float) -> bool:
    if first is None or last is None:
        return False
    return last > first * (1 + tolerance) + slack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=400.0, help="offered updates/s (default 400)")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds per window")
    parser.add_argument("--chats", type=int, default=2000)
    parser.add_argument("--tolerance", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.minutes <= 0 or args.every <= 0:
        parser.error("--rate, --minutes and --every must be positive")

    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    windows: list[dict[str, Any]] = []
    with Topology(tmp, partitions=6) as topo:
        # The sandbox keeps what it accepted in memory: bounded to a few windows, read a window at a time
        # (a soak that fetched the whole log every window would itself slow the sandbox down more and more).
        topo.sandbox_config({"delivery_log_limit": int(args.rate * args.every * 3) + 1000})
        settings = Settings.from_env(topo.env)
        admin = AdminClient(admin_config(settings, bootstrap=topo.bootstrap))
        run = LoadRun(topo.ports["ingest"], chats=args.chats, first_id=50_000_000, redeliver=0.0,
                      retry_non_2xx_s=60.0, connections=32, seed=7)
        seconds = args.minutes * 60
        errors: list[BaseException] = []

        def load() -> None:
            try:
                asyncio.run(run.open_loop(args.rate, seconds))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        loader = threading.Thread(target=load, name="soak-load", daemon=True)
        started = time.time()
        loader.start()
        cpu0, t0 = topo.cpu(), time.monotonic()
        window = 0
        while loader.is_alive():
            loader.join(timeout=max(0.0, started + (window + 1) * args.every - time.time()))
            window += 1
            cpu1, t1 = topo.cpu(), time.monotonic()
            since_ms, until_ms = (started + (window - 1) * args.every) * 1000, (started + window * args.every) * 1000
            sent = {u.uid: u for u in list(run.updates) if since_ms <= u.sent_wall_ms < until_ms}
            recent = topo.sandbox_deliveries(since_ms=int(since_ms))
            latencies = [min(d["arrival_ms"] for d in ds) - sent[uid].sent_wall_ms
                         for uid, ds in delivered_index(recent).items() if uid in sent]
            w = {"window": window, "at_s": round(window * args.every), "sent": len(sent),
                 "delivered": len(latencies), "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
                 "rss_mib": rss_mib(topo), "lag": lag_total(admin, settings),
                 "cores": {k: round((cpu1[k] - cpu0.get(k, 0.0)) / (t1 - t0), 2) for k in cpu1}}
            cpu0, t0 = cpu1, t1
            windows.append(w)
            print(json.dumps(w), file=sys.stderr, flush=True)
        if errors:
            raise errors[0]

    measured = windows[1:] if len(windows) > 3 else windows
    third = max(1, len(measured) // 3)
    first, last = measured[:third], measured[-third:]

    def mean(rows: list[dict[str, Any]], get: Any) -> float | None:
        values = [v for r in rows if (v := get(r)) is not None]
        return sum(values) / len(values) if values else None

    checks = {"p99": grew(mean(first, lambda r: r["p99_ms"]), mean(last, lambda r: r["p99_ms"]), args.tolerance, 25)}
    for name in windows[-1]["rss_mib"]:
        checks[f"rss {name}"] = grew(mean(first, lambda r, n=name: r["rss_mib"].get(n)),
                                     mean(last, lambda r, n=name: r["rss_mib"].get(n)), args.tolerance, 32)
    per_checkpoint = args.rate * settings.checkpoint_interval_s
    for group in windows[-1]["lag"]:
        checks[f"lag {group}"] = grew(mean(first, lambda r, g=group: r["lag"].get(g)),
                                      mean(last, lambda r, g=group: r["lag"].get(g)), args.tolerance, 2 * per_checkpoint)
    flat = not any(checks.values())

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [f"# botstream soak {stamp}", "",
             f"{args.rate:g} updates/s over {args.chats} chats for {args.minutes:g} min, windows of {args.every:g} s; "
             f"flat: {'yes' if flat else 'NO'} ({', '.join(k for k, v in checks.items() if v) or 'nothing grew'})", "",
             "| window | sent | delivered | p50 ms | p99 ms | RSS MiB (ingest/streams/sinks/sandbox/kafka) | lag (streams/sinks) | cores |",
             "|---|---|---|---|---|---|---|---|"]
    for w in windows:
        rss = "/".join(f"{w['rss_mib'].get(k, 0):.0f}" for k in ("ingest", "streams", "sinks", "sandbox", "kafka"))
        lag = "/".join(str(w["lag"].get(k, "-")) for k in ("streams", "sinks"))
        cores = sum(w["cores"].values())
        lines.append(f"| {w['at_s']} s | {w['sent']} | {w['delivered']} | {w['p50_ms'] or 0:.0f} | {w['p99_ms'] or 0:.0f} "
                     f"| {rss} | {lag} | {cores:.2f} |")
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench" / "results" / f"soak-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(json.dumps({"bench": "soak", "rate": args.rate, "minutes": args.minutes, "flat": flat, "grew": checks,
                      "windows": windows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
