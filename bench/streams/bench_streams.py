"""Streams worker throughput, latency, memory and recovery, next to Faust's and the client's ceilings.

Workload: Telegram text updates to the echo bot (`botstream.streams.examples.echo`), one per chat over up to
100k distinct chats, plus 5 % platform redeliveries (same update id, new record, a little later),
Avro-encoded and produced into `updates` before anything consumes (project producer settings,
`murmur2_random`) on `settings.partitions` partitions. Figures, all from one run on one broker:

1. updates/s of one `botstream streams` process (RocksDB tables, fresh data dir), from the first to
   the last `replies` record timestamp, and per CPU-second of the worker (steadier on a shared box);
2. the same backlog through a stateless Faust pass-through agent (same `faust_app()`, same Worker
   call): Faust's ceiling; 3. through a confluent-kafka batch consume → produce loop: the client's;
4. p50/p99 `updates` → `replies` record-timestamp latency at half the worker's saturation rate,
   paced, on fresh topics; the pass-through at the same offered rate is the baseline;
5. peak RSS (VmHWM) of the workers, next to the pass-through's;
6. time to recover N dedupe keys from the changelog on a fresh data dir: a probe update produced at
   start-up is answered once recovery is done; the start-up time of run 1 (empty changelogs) is
   subtracted. faust's "Restoring state" → "Done reading" log lines give a second figure, and its
   "total remaining" progress lines a rate when recovery does not finish in time.

A throughput run stops at `--window` seconds after its first output, so a slow worker keeps the run
bounded; its rate is still first → last output. Targets (from the issue) are reported, not asserted:
≥ 10,000 updates/s per worker, ≥ 50 % of the pass-through, 1M keys recovered in ≤ 30 s, RSS ≤ 1 GiB.
Starts its own broker unless KAFKA_BOOTSTRAP_SERVERS is set. The last line is one JSON object.

    python -m bench.streams.bench_streams [--updates N] [--quick] [--profile] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.streams import phases, processor_core, workload
from bench.streams.hotspots import Summary, py_spy
from bench.streams.phases import Bench, Plan
from bench.streams.procstat import ProcessSampler
from bench.streams.topic_probe import TopicProbe
from botstream.core.settings import Settings
from botstream.ops.embedded_kafka import EmbeddedKafka
from tests.pipeline import write_bots_file
from tests.processes import ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
TARGET_RATE = 10_000
TARGET_SHARE = 0.5
TARGET_RECOVERY_S_PER_1M = 30.0
TARGET_RSS_MIB = 1024
CORE_RECORDS = 20_000


def run(plan: Plan, base: Settings, bootstrap: str, tmp: Path, broker_pid: int | None) -> dict[str, Any]:
    settings = dataclasses.replace(base, kafka_bootstrap_servers=bootstrap, data_dir=tmp / "data",
                                   topic_prefix=f"bench-streams-{uuid.uuid4().hex[:6]}")
    w = workload.Workload(plan.updates, plan.chats)
    b = Bench(plan, settings, bootstrap, tmp, w, TopicProbe(bootstrap), ProcessGroup(tmp / "logs"),
              write_bots_file(tmp / "bots.toml"), ProcessSampler(broker_pid, interval=0.5) if broker_pid else None)
    r: dict[str, Any] = {"bench": "streams", "updates": w.updates, "redeliveries": w.redeliveries,
                         "chats": w.chats, "partitions": settings.partitions, "cpus": os.cpu_count(),
                         "loadavg_start": os.getloadavg()[0], "window_s": plan.window_s,
                         "latency_share": plan.latency_share, "profiled": plan.profile}
    try:
        b.phase_settings()
        started = time.perf_counter()
        records = workload.build(w)
        built = time.perf_counter() - started
        produced = workload.produce_all(bootstrap, settings.topic("updates"), records)
        _say(f"workload: {w.records:,} records built in {built:.1f}s, produced in {produced:.1f}s")
        r["core"] = processor_core.run(b.bots_file, records[:CORE_RECORDS], profile=plan.profile)
        del records
        _say(f"processor core: {r['core']['updates_per_cpu_s']:,.0f} updates/CPU-s")

        r["worker"] = phases.worker_throughput(b)
        _say(f"worker: {r['worker']['updates_per_s']:,.0f} updates/s ({r['worker']['outputs']:,} replies)")
        rate = max(r["worker"]["updates_per_s"] * plan.latency_share, 20.0)
        r["worker"]["latency"] = phases.worker_latency(b, rate)
        _say(f"worker latency at {rate:,.0f}/s: p50 {r['worker']['latency']['p50_ms']} ms, "
             f"p99 {r['worker']['latency']['p99_ms']} ms")
        r["passthrough"] = phases.passthrough_throughput(b)
        _say(f"pass-through: {r['passthrough']['updates_per_s']:,.0f} records/s")
        r["passthrough"]["latency"] = phases.passthrough_latency(b, rate)
        _say(f"pass-through latency: p50 {r['passthrough']['latency']['p50_ms']} ms, "
             f"p99 {r['passthrough']['latency']['p99_ms']} ms")
        r["confluent"] = phases.client_loop(b)
        _say(f"confluent loop: {r['confluent']['updates_per_s']:,.0f} records/s")
        r["recovery"] = phases.recovery(b, r["worker"]["startup_s"])
        _say(f"recovery: {_seconds(r['recovery'].get('recovery_s'))} for {plan.recovery_keys:,} keys")
    finally:
        b.processes.stop_all()
        b.probe.close()
        if b.broker is not None:
            b.broker.stop()
    r["rss_peaks_mib"] = b.rss_peaks_mib
    r["loadavg_end"] = os.getloadavg()[0]
    return with_ratios(r)


def with_ratios(r: dict[str, Any]) -> dict[str, Any]:
    w, pt, cl, rec, rss = r["worker"], r["passthrough"], r["confluent"], r["recovery"], r["rss_peaks_mib"]
    worker_rss = max(v for k, v in rss.items() if k.startswith("streams"))
    r["worker_rss_peak_mib"] = worker_rss
    r["ratios"] = {
        "worker_vs_passthrough": _ratio(w["updates_per_s"], pt["updates_per_s"]),
        "worker_vs_confluent": _ratio(w["updates_per_s"], cl["updates_per_s"]),
        "passthrough_vs_confluent": _ratio(pt["updates_per_s"], cl["updates_per_s"]),
        "worker_vs_passthrough_per_cpu_s": _ratio(w["updates_per_cpu_s"], pt["updates_per_cpu_s"]),
        "worker_vs_core_per_cpu_s": _ratio(w["updates_per_cpu_s"], r["core"]["updates_per_cpu_s"]),
        "latency_p50_worker_vs_passthrough": _ratio(w["latency"]["p50_ms"], pt["latency"]["p50_ms"]),
        "latency_p99_worker_vs_passthrough": _ratio(w["latency"]["p99_ms"], pt["latency"]["p99_ms"]),
        "rss_worker_vs_passthrough": _ratio(worker_rss, rss.get("passthrough")),
        "recovery_vs_target": _ratio(rec.get("recovery_s_per_1m_keys"), TARGET_RECOVERY_S_PER_1M),
    }
    r["targets"] = {
        "updates_per_s_ge_10000": w["updates_per_s"] >= TARGET_RATE,
        "share_of_passthrough_ge_0.5": (r["ratios"]["worker_vs_passthrough"] or 0) >= TARGET_SHARE,
        "recovery_1m_keys_le_30s": (rec.get("recovery_s_per_1m_keys") or float("inf")) <= TARGET_RECOVERY_S_PER_1M,
        "rss_le_1gib": worker_rss <= TARGET_RSS_MIB,
    }
    return r


def render(r: dict[str, Any]) -> list[str]:
    w, pt, cl, rec, q, t = r["worker"], r["passthrough"], r["confluent"], r["recovery"], r["ratios"], r["targets"]
    met = {True: "met", False: "NOT met"}

    def row(label: str, x: dict[str, Any], ratio: str) -> str:
        per_cpu = f"{x['updates_per_cpu_s']:>8,.0f}/CPU-s" if x.get("updates_per_cpu_s") else " " * 14
        broker = x.get("broker_cores_used")
        broker_s = f"broker {broker:.2f}" if broker is not None else ""
        done = "" if x.get("complete") else f" [window: {x['outputs']:,} outputs]"
        return (f"  {label:<26} {x['updates_per_s']:>8,.0f}/s {per_cpu}  {x['cpu_cores_used']:.2f} cores"
                f"  {broker_s:<12} {ratio}{done}")

    wl, pl = w["latency"], pt["latency"]
    lines = [
        f"streams: {r['updates']:,} updates + {r['redeliveries']:,} redeliveries over {r['chats']:,} chats, "
        f"{r['partitions']} partitions, {r['cpus']} CPUs, load {r['loadavg_start']:.1f} → {r['loadavg_end']:.1f}",
        "  throughput, first → last output timestamp          (cores = process CPU, broker = broker CPU)",
        row("streams worker", w, "1.00"),
        row("faust pass-through", pt, f"worker/this {q['worker_vs_passthrough']:.2f} "
            f"(per CPU-s {_num(q['worker_vs_passthrough_per_cpu_s'])})"),
        row("confluent consume→produce", cl, f"worker/this {q['worker_vs_confluent']:.3f}"),
        f"  processor core, no Faust/Kafka   {r['core']['updates_per_cpu_s']:>8,.0f}/CPU-s "
        f"({r['core']['us_per_update']:.0f} µs/update: decode, dedupe, handler, encode; dict tables)  "
        f"worker/this per CPU-s {_num(q['worker_vs_core_per_cpu_s'])}",
        f"  worker: start-up to first reply {w['startup_s']:.1f}s; {w['outputs']:,} replies for "
        f"{w['outputs_expected']:,} unique updates, {w['messages']:,} messages"
        + (" (every redelivery dropped)" if w["outputs"] == w["outputs_expected"] else "")
        + f"; quarantined: {w['quarantined']:,} (throughput run), {wl['quarantined']:,} (latency run)"
        + (" ← WORKER BUG: updates quarantined" if w["quarantined"] or wl["quarantined"] else ""),
        f"  latency updates → replies, {wl['offered_per_s']:,.0f}/s offered ({r['latency_share']:.0%} of the worker's "
        f"rate): worker p50 {_ms(wl['p50_ms'])}, p99 {_ms(wl['p99_ms'])}, max {_ms(wl['max_ms'])} "
        f"({wl['answered']:,}/{wl['sent']:,}); pass-through p50 {_ms(pl['p50_ms'])}, p99 {_ms(pl['p99_ms'])}; "
        f"ratio p50 {_num(q['latency_p50_worker_vs_passthrough'], 1)}x, p99 {_num(q['latency_p99_worker_vs_passthrough'], 1)}x"
        f" (after a {wl['warm_up_s']:.0f}s warm-up; worker p50 per 5 s: "
        + ", ".join(_ms(v) for v in wl["p50_ms_by_5s"]) + ")",
        "  RSS peak: " + ", ".join(f"{k} {v:,.0f} MiB" for k, v in r["rss_peaks_mib"].items())
        + f"; worker/pass-through {_num(q['rss_worker_vs_passthrough'], 1)}x",
    ]
    tables = "+".join(rec["tables"])
    if rec.get("complete"):
        lines.append(
            f"  recovery: {rec['keys']:,} keys ({rec['changelog_records']:,} records, {tables}) in "
            f"{rec['recovery_s']:.1f}s = {rec['keys_per_s']:,.0f} keys/s (probe answered after "
            f"{rec['probe_answered_after_s']:.1f}s − start-up {rec['startup_baseline_s']:.1f}s; faust log "
            f"{_seconds(rec.get('recovery_log_s'))}) → {_seconds(rec['recovery_s_per_1m_keys'])} per 1M keys")
    else:
        lines.append(
            f"  recovery: {rec['keys']:,} keys ({tables}) NOT done after {rec['waited_s']:.0f}s; faust progress "
            f"{_num(rec.get('keys_per_s_progress'), 0)} keys/s → ~{_seconds(rec.get('recovery_s_per_1m_keys'))} per 1M")
        if rec.get("stalled_after_recovery"):
            lines.append(f"    recovery finished but no reply: {rec['stalled_after_recovery']}")
    lines += [
        "  targets (reported, not asserted):",
        f"    ≥ {TARGET_RATE:,} updates/s per worker ..... {met[t['updates_per_s_ge_10000']]} "
        f"({w['updates_per_s']:,.0f}/s = {w['updates_per_s'] / TARGET_RATE:.2f} of target)",
        f"    ≥ 50 % of the pass-through ......... {met[t['share_of_passthrough_ge_0.5']]} "
        f"({q['worker_vs_passthrough']:.0%})",
        f"    1M keys recovered in ≤ 30 s ........ {met[t['recovery_1m_keys_le_30s']]} "
        f"({_seconds(rec.get('recovery_s_per_1m_keys'))} per 1M)",
        f"    RSS ≤ 1 GiB ........................ {met[t['rss_le_1gib']]} ({r['worker_rss_peak_mib']:,.0f} MiB)",
    ]
    if r["core"].get("profile"):
        lines.append("  hot spots, processor core (cProfile, CPU time):")
        lines += ["    " + ln for ln in r["core"]["profile"].splitlines()[6:30] if ln.strip()]
    for label, x in (("throughput run", w), ("recovery run", rec), ("pass-through", pt)):
        if isinstance(x.get("hotspots"), Summary):
            lines.append(f"  hot spots, {label} (py-spy, wall-clock samples):")
            lines += ["  " + ln for ln in x["hotspots"].lines()]
    return lines


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _num(v: float | None, digits: int = 2) -> str:
    return f"{v:,.{digits}f}" if v is not None else "n/a"


def _seconds(v: float | None) -> str:
    return f"{v:.1f}s" if v is not None else "n/a"


def _ms(v: float | None) -> str:
    return f"{v:,.0f} ms" if v is not None else "n/a"


def _say(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


def jsonable(r: dict[str, Any]) -> dict[str, Any]:
    def default(o: object) -> object:
        if isinstance(o, Summary):
            return {"samples": o.samples, "self_time": o.self_time[:25], "inclusive": o.inclusive[:25],
                    "by_package": o.by_package[:15]}
        return str(o)

    return json.loads(json.dumps(r, default=default))


@contextlib.contextmanager
def broker(base: Settings, tmp: Path) -> Iterator[tuple[str, int | None]]:
    if base.kafka_bootstrap_servers:
        yield base.kafka_bootstrap_servers, None
        return
    kafka = EmbeddedKafka(tmp / "kafka", port=None, heap=base.kafka_heap, cache_dir=base.cache_dir,
                          tie_to_parent=True)
    bootstrap = kafka.start(timeout=120)
    try:
        yield bootstrap, kafka.nodes[0].pid()
    finally:
        kafka.stop()


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    updates = args.updates or (20_000 if quick else 100_000)
    latency_s = args.latency_seconds or (8.0 if quick else 20.0)
    return Plan(updates=updates, chats=args.chats or min(updates, 100_000),
                window_s=args.window or (20.0 if quick else 35.0),
                latency_share=0.5, latency_s=latency_s, baseline_latency_s=max(5.0, latency_s * 0.4),
                recovery_keys=args.recovery_keys or (200_000 if quick else 1_000_000),
                recovery_index=args.with_index,
                recovery_timeout_s=args.recovery_timeout or (90.0 if quick else 165.0),
                profile=args.profile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, help="unique updates (default 100,000; --quick 20,000)")
    parser.add_argument("--chats", type=int, help="distinct chats (default: one per update, at most 100,000)")
    parser.add_argument("--window", type=float, help="longest throughput run after its first output, s "
                        "(default 35; --quick 20)")
    parser.add_argument("--latency-seconds", type=float, help="paced run of the worker, s (default 20; --quick 8)")
    parser.add_argument("--recovery-keys", type=int, help="dedupe keys to recover (default 1M; --quick 200k)")
    parser.add_argument("--with-index", action="store_true",
                        help="also fill the dedupe-index changelog (a real recovery reads both: twice the records)")
    parser.add_argument("--recovery-timeout", type=float, help="s to wait for recovery (default 165; --quick 90)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small workload, short phases")
    parser.add_argument("--profile", action="store_true",
                        help="sample the worker with py-spy during the throughput run (costs it a little)")
    parser.add_argument("--out", type=Path, help="write the JSON figures here too "
                        "(default: bench/results/streams.json when bench/results/ exists)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data, profiles)")
    args = parser.parse_args(argv)
    plan = plan_from(args)
    if plan.profile and py_spy() is None:
        parser.error("--profile needs py-spy (pip install py-spy into the venv)")
    base = Settings.from_env()
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    started = time.perf_counter()
    try:
        with broker(base, tmp) as (bootstrap, broker_pid):
            result = run(plan, base, bootstrap, tmp, broker_pid)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result["wall_s"] = time.perf_counter() - started
    for line in render(result):
        print(line)
    data = jsonable(result)
    results_dir = ROOT / "bench" / "results"
    out = args.out or (results_dir / "streams.json" if results_dir.is_dir() else None)
    if out:
        out.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
