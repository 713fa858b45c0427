"""Streams worker throughput, latency, CPU, memory and recovery, next to Quix Streams and to Faust's and
the client's ceilings.

Workload: Telegram text updates to the echo bot (`botstream.streams.examples.echo`), one per chat over up to
100k distinct chats, plus 5 % platform redeliveries (same update id, new record, a little later),
Avro-encoded and produced into `updates` before anything consumes (project producer settings,
`murmur2_random`) on `settings.partitions` partitions. Figures, all from one run on one broker:

1. updates/s of one `botstream streams` process (its own RocksDB store, fresh data dir), from the first
   to the last `replies` record timestamp, and per CPU-second of the worker (steadier on a shared box);
   CPU per update (worker process only) = its CPU-seconds over that span / the updates consumed;
2. the same backlog through Quix Streams (`bench/streams/quix_peer.py`, its own virtualenv, see
   `bench.streams.quix_env`): decode, dedupe with a 7-day window in Quix state, a per-chat counter in
   state, an echo reply as JSON; at-least-once, committing as often as the worker checkpoints; measured
   the same way (first → last output record, per CPU-second of its process);
3. the same backlog through a stateless Faust pass-through agent (same `faust_app()`, same Worker
   call): Faust's ceiling; 4. through a confluent-kafka batch consume → produce loop: the client's;
5. p50/p99 `updates` → `replies` record-timestamp latency at half the worker's saturation rate,
   paced, on fresh topics; the pass-through at the same offered rate is the baseline;
6. peak RSS (VmHWM) of the workers, next to the pass-through's and Quix's;
7. time to recover N dedupe keys from the changelog on a fresh data dir, from the worker's own
   "partition N restored: ... in X s" log lines (first start → last end across partitions); a probe
   update produced at start-up checks that it answers afterwards, and its reply time minus the
   start-up time of run 1 (empty changelogs) gives a second figure.

A throughput run stops at `--window` seconds after its first output, so a slow worker keeps the run
bounded; its rate is still first → last output. Targets (issue 14) are reported, never asserted:
worker / Quix ≥ 0.5 (same run), update → reply p99 ≤ 50 ms at 50 % of the worker's capacity,
1M dedupe keys recovered in ≤ 15 s, worker CPU per update ≤ 200 µs. `--profile` samples the worker
(throughput and recovery runs), the pass-through and the Quix peer with py-spy, so a missed target
comes with the profile that explains it.
Starts its own broker unless KAFKA_BOOTSTRAP_SERVERS is set. The last line is one JSON object.

    python -m bench.streams.bench_streams [--updates N] [--quick] [--profile] [--no-quix] [--out FILE]
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

from bench.streams import phases, processor_core, quix_env, workload
from bench.streams.hotspots import Summary, py_spy
from bench.streams.phases import Bench, Plan
from bench.streams.procstat import ProcessSampler
from bench.streams.topic_probe import TopicProbe
from botstream.core.settings import Settings
from botstream.ops.embedded_kafka import EmbeddedKafka
from tests.pipeline import write_bots_file
from tests.processes import ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
TARGET_VS_QUIX = 0.5              # streams worker / Quix Streams, updates/s, same run
TARGET_LATENCY_P99_MS = 50.0      # update → reply p99 at 50 % of the worker's capacity
TARGET_RECOVERY_S_PER_1M = 15.0   # s to recover 1M dedupe keys
TARGET_CPU_US_PER_UPDATE = 200.0  # worker process CPU per update
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
    if plan.quix:
        r["quix"] = quix_setup(b, base.cache_dir)
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
        if b.quix_python is not None:
            try:
                r["quix"].update(phases.quix_throughput(b))
                _say(f"quix: {r['quix']['updates_per_s']:,.0f} updates/s ({r['quix']['outputs']:,} replies)")
            except Exception as exc:  # noqa: BLE001 - the peer failing must not lose the worker's figures
                r["quix"]["error"] = f"{type(exc).__name__}: {exc}"[-3000:]
                _say(f"quix peer failed: {r['quix']['error'][:300]}")
        r["passthrough"] = phases.passthrough_throughput(b)
        _say(f"pass-through: {r['passthrough']['updates_per_s']:,.0f} records/s")
        r["passthrough"]["latency"] = phases.passthrough_latency(b, rate)
        _say(f"pass-through latency: p50 {r['passthrough']['latency']['p50_ms']} ms, "
             f"p99 {r['passthrough']['latency']['p99_ms']} ms")
        r["confluent"] = phases.client_loop(b)
        _say(f"confluent loop: {r['confluent']['updates_per_s']:,.0f} records/s")
        r["recovery"] = phases.recovery(b, r["worker"]["startup_s"])
        _say(f"recovery: {_seconds(r['recovery'].get('recovery_s'))} for {plan.recovery_keys:,} keys "
             f"(from the {r['recovery'].get('recovery_from')})")
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
    qx = r.get("quix") or {}
    worker_rss = max(v for k, v in rss.items() if k.startswith("streams"))
    r["worker_rss_peak_mib"] = worker_rss
    lat = w["latency"]
    p99 = lat["p99_ms"]
    if lat["sent"] and lat["answered"] < 0.99 * lat["sent"]:
        p99 = None  # more than 1 % unanswered: the p99 is not among the answered ones
    cpu_us = w.get("cpu_us_per_update")
    recovery_1m = rec.get("recovery_s_per_1m_keys")
    r["ratios"] = {
        "worker_vs_quix": _ratio(w["updates_per_s"], qx.get("updates_per_s")),
        "worker_vs_quix_per_cpu_s": _ratio(w["updates_per_cpu_s"], qx.get("updates_per_cpu_s")),
        "worker_vs_passthrough": _ratio(w["updates_per_s"], pt["updates_per_s"]),
        "worker_vs_confluent": _ratio(w["updates_per_s"], cl["updates_per_s"]),
        "passthrough_vs_confluent": _ratio(pt["updates_per_s"], cl["updates_per_s"]),
        "worker_vs_passthrough_per_cpu_s": _ratio(w["updates_per_cpu_s"], pt["updates_per_cpu_s"]),
        "worker_vs_core_per_cpu_s": _ratio(w["updates_per_cpu_s"], r["core"]["updates_per_cpu_s"]),
        "latency_p50_worker_vs_passthrough": _ratio(lat["p50_ms"], pt["latency"]["p50_ms"]),
        "latency_p99_worker_vs_passthrough": _ratio(lat["p99_ms"], pt["latency"]["p99_ms"]),
        "rss_worker_vs_passthrough": _ratio(worker_rss, rss.get("passthrough")),
        "rss_worker_vs_quix": _ratio(worker_rss, rss.get("quix")),
        "latency_p99_vs_target": _ratio(p99, TARGET_LATENCY_P99_MS),
        "recovery_vs_target": _ratio(recovery_1m, TARGET_RECOVERY_S_PER_1M),
        "cpu_per_update_vs_target": _ratio(cpu_us, TARGET_CPU_US_PER_UPDATE),
    }
    vs_quix = r["ratios"]["worker_vs_quix"]
    r["targets"] = {  # None: not measured in this run
        "worker_vs_quix_ge_0.5": None if vs_quix is None else vs_quix >= TARGET_VS_QUIX,
        "latency_p99_le_50ms": (p99 <= TARGET_LATENCY_P99_MS) if p99 is not None else
        (False if lat["sent"] else None),
        "recovery_1m_keys_le_15s": None if recovery_1m is None else recovery_1m <= TARGET_RECOVERY_S_PER_1M,
        "cpu_per_update_le_200us": None if cpu_us is None else cpu_us <= TARGET_CPU_US_PER_UPDATE,
    }
    return r


def render(r: dict[str, Any]) -> list[str]:
    w, pt, cl, rec, q, t = r["worker"], r["passthrough"], r["confluent"], r["recovery"], r["ratios"], r["targets"]
    qx = r.get("quix") or {}
    met = {True: "met", False: "NOT met", None: "n/a"}

    def row(label: str, x: dict[str, Any], ratio: str) -> str:
        per_cpu = f"{x['updates_per_cpu_s']:>8,.0f}/CPU-s" if x.get("updates_per_cpu_s") else " " * 14
        us = f"{x['cpu_us_per_update']:>5,.0f} µs/update" if x.get("cpu_us_per_update") else " " * 15
        broker = x.get("broker_cores_used")
        broker_s = f"broker {broker:.2f}" if broker is not None else ""
        done = "" if x.get("complete") else f" [window: {x['outputs']:,} outputs]"
        return (f"  {label:<26} {x['updates_per_s']:>8,.0f}/s {per_cpu} {us}  {x['cpu_cores_used']:.2f} cores"
                f"  {broker_s:<12} {ratio}{done}")

    wl, pl = w["latency"], pt["latency"]
    lines = [
        f"streams: {r['updates']:,} updates + {r['redeliveries']:,} redeliveries over {r['chats']:,} chats, "
        f"{r['partitions']} partitions, {r['cpus']} CPUs, load {r['loadavg_start']:.1f} → {r['loadavg_end']:.1f}",
        "  throughput, first → last output timestamp          (cores = process CPU, broker = broker CPU)",
        row("streams worker", w, "1.00"),
    ]
    if qx.get("updates_per_s") is not None:
        version = (qx.get("versions") or {}).get("quixstreams", "")
        lines.append(row(f"quix streams {version}".strip(), qx, f"worker/this {_num(q['worker_vs_quix'])} "
                         f"(per CPU-s {_num(q['worker_vs_quix_per_cpu_s'])})"))
    elif qx:
        lines.append(f"  quix streams               not measured: {str(qx.get('error', 'skipped'))[:400]}")
    lines += [
        row("faust pass-through", pt, f"worker/this {q['worker_vs_passthrough']:.2f} "
            f"(per CPU-s {_num(q['worker_vs_passthrough_per_cpu_s'])})"),
        row("confluent consume→produce", cl, f"worker/this {q['worker_vs_confluent']:.3f}"),
        f"  processor core, no Faust/Kafka   {r['core']['updates_per_cpu_s']:>8,.0f}/CPU-s "
        f"({r['core']['us_per_update']:.0f} µs/update: decode, dedupe, handler, encode; RocksDB store)  "
        f"worker/this per CPU-s {_num(q['worker_vs_core_per_cpu_s'])}",
        f"  worker: start-up to first reply {w['startup_s']:.1f}s; {w['outputs']:,} replies for "
        f"{w['outputs_expected']:,} unique updates, {w['messages']:,} messages"
        + (" (every redelivery dropped)" if w["outputs"] == w["outputs_expected"] else "")
        + f"; quarantined: {w['quarantined']:,} (throughput run), {wl['quarantined']:,} (latency run)"
        + (" ← WORKER BUG: updates quarantined" if w["quarantined"] or wl["quarantined"] else ""),
    ]
    if qx.get("updates_per_s") is not None:
        counts = qx.get("counts") or {}
        lines.append(
            f"  quix: start-up to first reply {qx['startup_s']:.1f}s; {qx['outputs']:,} replies for "
            f"{qx['outputs_expected']:,} unique updates"
            + (" (every redelivery dropped)" if qx["outputs"] == qx["outputs_expected"] else "")
            + (f"; its own count: {counts.get('consumed', 0):,} consumed, {counts.get('dropped', 0):,} dropped, "
               f"{counts.get('replies', 0):,} replies" if counts else "")
            + f"; commit every {qx.get('commit_interval_s')}s, at-least-once")
    lines += [
        f"  latency updates → replies, {wl['offered_per_s']:,.0f}/s offered ({r['latency_share']:.0%} of the worker's "
        f"rate): worker p50 {_ms(wl['p50_ms'])}, p99 {_ms(wl['p99_ms'])}, max {_ms(wl['max_ms'])} "
        f"({wl['answered']:,}/{wl['sent']:,}); pass-through p50 {_ms(pl['p50_ms'])}, p99 {_ms(pl['p99_ms'])}; "
        f"ratio p50 {_num(q['latency_p50_worker_vs_passthrough'], 1)}x, p99 {_num(q['latency_p99_worker_vs_passthrough'], 1)}x"
        f" (after a {wl['warm_up_s']:.0f}s warm-up; worker p50 per 5 s: "
        + ", ".join(_ms(v) for v in wl["p50_ms_by_5s"]) + ")",
        "  RSS peak: " + ", ".join(f"{k} {v:,.0f} MiB" for k, v in r["rss_peaks_mib"].items())
        + f"; worker/pass-through {_num(q['rss_worker_vs_passthrough'], 1)}x"
        + (f", worker/quix {_num(q['rss_worker_vs_quix'], 1)}x" if q.get("rss_worker_vs_quix") else ""),
    ]
    lines += _recovery_lines(rec)
    lines += [
        "  targets (issue 14; reported, not asserted):",
        f"    streams worker / Quix ≥ {TARGET_VS_QUIX} (same run) ........... {met[t['worker_vs_quix_ge_0.5']]} "
        f"({_num(q['worker_vs_quix'])}; per CPU-s {_num(q['worker_vs_quix_per_cpu_s'])})",
        f"    update → reply p99 ≤ {TARGET_LATENCY_P99_MS:.0f} ms at 50 % capacity ... "
        f"{met[t['latency_p99_le_50ms']]} ({_ms(wl['p99_ms'])} = {_num(q['latency_p99_vs_target'])}x the target"
        f"; {wl['answered']:,}/{wl['sent']:,} answered)",
        f"    1M dedupe keys recovered in ≤ {TARGET_RECOVERY_S_PER_1M:.0f} s ........ "
        f"{met[t['recovery_1m_keys_le_15s']]} ({_seconds(rec.get('recovery_s_per_1m_keys'))} per 1M = "
        f"{_num(q['recovery_vs_target'])}x the target)",
        f"    worker CPU per update ≤ {TARGET_CPU_US_PER_UPDATE:.0f} µs ............ "
        f"{met[t['cpu_per_update_le_200us']]} ({_num(w.get('cpu_us_per_update'), 0)} µs = "
        f"{_num(q['cpu_per_update_vs_target'])}x the target)",
    ]
    if r["core"].get("profile"):
        lines.append("  hot spots, processor core (cProfile, CPU time):")
        lines += ["    " + ln for ln in r["core"]["profile"].splitlines()[6:30] if ln.strip()]
    for label, x in (("streams worker, throughput run", w), ("streams worker, latency run", wl),
                     ("streams worker, recovery run", rec),
                     ("quix peer", qx), ("pass-through", pt)):
        if isinstance(x.get("hotspots"), Summary):
            lines.append(f"  hot spots, {label} (py-spy, samples holding the GIL):")
            lines += ["  " + ln for ln in x["hotspots"].lines()]
    return lines


def _recovery_lines(rec: dict[str, Any]) -> list[str]:
    keys = f"{rec['keys']:,} dedupe keys"
    if rec.get("restore_log_s") is not None:
        log = (f"worker log: {rec.get('restored_partitions')} partitions restored, first start → last end "
               f"{rec['restore_log_s']:.2f}s (busy {rec.get('restore_busy_s', 0):.1f}s summed over partitions); "
               f"{rec.get('changelog_records_read', 0):,} records read, {rec.get('applied', 0):,} applied, "
               f"{rec.get('skipped', 0):,} skipped")
    else:
        log = "no \"partition N restored\" line in the worker's log"
    probe = (f"probe answered after {rec['probe_answered_after_s']:.1f}s − start-up {rec['startup_baseline_s']:.1f}s "
             f"= {rec['recovery_probe_s']:.1f}s" if rec.get("probe_answered_after_s") is not None
             else f"probe NOT answered after {rec.get('waited_s', 0):.0f}s (worker alive: {rec.get('worker_alive')})")
    lines = []
    if rec.get("complete"):
        lines.append(f"  recovery: {keys} in {rec['recovery_s']:.2f}s ({rec['recovery_from']}) = "
                     f"{rec['keys_per_s']:,.0f} keys/s → {_seconds(rec['recovery_s_per_1m_keys'])} per 1M keys")
    else:
        lines.append(f"  recovery: {keys} NOT done")
    lines.append(f"    {log}; {probe}")
    if rec.get("restored_partitions") and not rec.get("applied_all_keys"):
        lines.append(f"    ← applied {rec.get('applied', 0):,} of {rec['keys']:,} keys")
    if rec.get("stalled_after_recovery"):
        lines.append(f"    restored but no reply: {rec['stalled_after_recovery']}")
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


def quix_setup(b: Bench, cache_dir: Path) -> dict[str, Any]:
    """The Quix peer's virtualenv, made on demand (a first run installs from the package index)."""
    started = time.perf_counter()
    try:
        b.quix_python = quix_env.ensure(cache_dir)
    except quix_env.QuixUnavailable as exc:
        _say(f"no Quix peer: {exc}")
        return {"error": str(exc)[-3000:], "pinned": quix_env.pinned()}
    out = {"venv": str(b.quix_python.parent.parent), "venv_ready_s": round(time.perf_counter() - started, 1),
           "versions": quix_env.installed_versions(b.quix_python)}
    _say(f"quix peer: {out['versions']} ({out['venv_ready_s']}s to get its virtualenv ready)")
    return out


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    updates = args.updates or (20_000 if quick else 100_000)
    latency_s = args.latency_seconds or (8.0 if quick else 20.0)
    return Plan(updates=updates, chats=args.chats or min(updates, 100_000),
                window_s=args.window or (20.0 if quick else 35.0),
                latency_share=0.5, latency_s=latency_s, baseline_latency_s=max(5.0, latency_s * 0.4),
                recovery_keys=args.recovery_keys or (200_000 if quick else 1_000_000),
                recovery_timeout_s=args.recovery_timeout or (90.0 if quick else 165.0),
                profile=args.profile, quix=not args.no_quix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, help="unique updates (default 100,000; --quick 20,000)")
    parser.add_argument("--chats", type=int, help="distinct chats (default: one per update, at most 100,000)")
    parser.add_argument("--window", type=float, help="longest throughput run after its first output, s "
                        "(default 35; --quick 20)")
    parser.add_argument("--latency-seconds", type=float, help="paced run of the worker, s (default 20; --quick 8)")
    parser.add_argument("--recovery-keys", type=int, help="dedupe keys to recover (default 1M; --quick 200k)")
    parser.add_argument("--recovery-timeout", type=float, help="s to wait for recovery (default 165; --quick 90)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small workload, short phases")
    parser.add_argument("--profile", action="store_true",
                        help="sample the worker (throughput and recovery runs), the pass-through and the Quix "
                        "peer with py-spy (costs them a little)")
    parser.add_argument("--no-quix", action="store_true",
                        help="skip the Quix Streams peer (its virtualenv needs the package index the first time)")
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
