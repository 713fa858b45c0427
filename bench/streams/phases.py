"""The measurements of bench_streams, one function per phase, all on one broker.

Every phase that needs an idle consumer gets its own topics (a prefix per phase for the streams
worker, a topic pair for the pass-through), so no phase inherits another's backlog. Child processes
are started through `tests.processes.ProcessGroup` (logged to files, tied to this process, stopped by
pid) and watched from /proc; topics are watched by high watermark, and read only once a phase is over.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from bench.streams import changelog, workload
from bench.streams.confluent_loop import consume_produce
from bench.streams.hotspots import Recorder, py_spy, summarise
from bench.streams.procstat import ProcessSampler
from bench.streams.topic_probe import TopicProbe
from botstream.core.settings import Settings
from botstream.ops.admin import admin_client, apply_catalog
from botstream.ops.embedded_kafka import free_port
from tests.pipeline import CODEC
from tests.processes import Child, ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ["-m", "botstream", "streams"]
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Plan:
    updates: int
    chats: int
    window_s: float          # longest a throughput run may take after its first output record
    latency_share: float     # offered rate of the latency runs, as a share of the worker's saturation rate
    latency_s: float         # paced seconds, streams worker
    baseline_latency_s: float  # paced seconds, pass-through
    recovery_keys: int
    recovery_index: bool     # also fill (and so recover) the dedupe-index changelog
    recovery_timeout_s: float
    profile: bool


@dataclass
class Bench:
    """What the phases share: the broker, this run's settings, the children, the samplers."""

    plan: Plan
    settings: Settings
    bootstrap: str
    tmp: Path
    workload: workload.Workload
    probe: TopicProbe
    processes: ProcessGroup
    bots_file: Path
    broker: ProcessSampler | None  # the embedded broker's CPU, when this run started it
    rss_peaks_mib: dict[str, float] = field(default_factory=dict)

    def env(self, name: str, settings: Settings) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BOTSTREAM_TOPIC_PREFIX": settings.topic_prefix,
                "BOTSTREAM_PARTITIONS": str(settings.partitions), "BOTSTREAM_BOTS_FILE": str(self.bots_file),
                "BOTSTREAM_DATA_DIR": str(self.tmp / f"data-{name}"), "BOTSTREAM_LOG_LEVEL": "INFO",
                "BOTSTREAM_LOG_FORMAT": "json", "BOTSTREAM_STREAMS_WEB_PORT": str(free_port())}

    def start(self, name: str, args: list[str], settings: Settings) -> tuple[Child, float, ProcessSampler]:
        spawned = time.time()
        child = self.processes.start(name, args, env=self.env(name, settings), cwd=ROOT)
        return child, spawned, ProcessSampler(child.pid)

    def stop(self, name: str, child: Child, sampler: ProcessSampler) -> None:
        sampler.stop()
        self.rss_peaks_mib[name] = sampler.peak_mib
        child.terminate(grace=20)

    def phase_settings(self, suffix: str | None = None) -> Settings:
        """Settings with their own topic prefix and the catalog applied (table changelogs included)."""
        settings = self.settings
        if suffix:
            settings = dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}-{suffix}")
        report = apply_catalog(settings, self.bootstrap)
        if not report.ok:
            raise RuntimeError(f"topics of {settings.topic_prefix}: {report.errors}")
        return settings

    def create_topic(self, name: str) -> str:
        admin = admin_client(self.settings, self.bootstrap)
        admin.create_topics([NewTopic(name, self.settings.partitions,
                                      self.settings.replication_factor)])[name].result(30)
        return name

    def broker_cores(self, start_s: float, end_s: float) -> float | None:
        if self.broker is None or end_s <= start_s:
            return None
        return self.broker.cpu_between(start_s, end_s) / (end_s - start_s)


# -- throughput ---------------------------------------------------------------------------------------------
def drain(b: Bench, name: str, args: list[str], settings: Settings, out_topic: str, expected: int,
          records_per_output: float, profile: bool = False) -> dict[str, Any]:
    """Start a consumer process on a backlog; rate from the first to the last output record timestamp,
    within `plan.window_s` of the first output."""
    child, spawned, sampler = b.start(name, args, settings)
    recorder = None
    try:
        if b.probe.wait_count(out_topic, 1, timeout=READY_TIMEOUT_S, stall=READY_TIMEOUT_S, alive=child.alive) < 1:
            raise RuntimeError(f"{name}: no output within {READY_TIMEOUT_S:.0f}s:\n{child.output()[-3000:]}")
        recorder = Recorder(child.pid, b.tmp / f"{name}.pyspy.txt") if profile else None
        reached = b.probe.wait_count(out_topic, expected, timeout=b.plan.window_s, stall=30, alive=child.alive)
        until = b.probe.end_offsets(out_topic)
        folded = recorder.stop() if recorder else None
        recorder = None
        if not child.alive():
            raise RuntimeError(f"{name} exited:\n{child.output()[-3000:]}")
        if reached >= expected:
            time.sleep(1.0)  # anything beyond `expected` would be a redelivery that got through
            until = b.probe.end_offsets(out_topic)
    finally:
        if recorder is not None:
            recorder.stop()
        b.stop(name, child, sampler)
    span = b.probe.span(out_topic, until=until)
    first, last = span.first_ms / 1000, span.last_ms / 1000
    cpu = sampler.cpu_between(first, last)
    consumed = (span.count - 1) * records_per_output
    return {
        "outputs": span.count, "outputs_expected": expected, "complete": span.count >= expected,
        "updates_per_s": span.rate() * records_per_output, "span_s": span.seconds,
        "updates_per_cpu_s": consumed / cpu if cpu > 0 else None, "cpu_cores_used": cpu / span.seconds,
        "broker_cores_used": b.broker_cores(first, last), "startup_s": first - spawned,
        "rss_peak_mib": sampler.peak_mib, "hotspots": summarise(folded) if folded else None,
    }


def worker_throughput(b: Bench) -> dict[str, Any]:
    w = b.workload
    out = drain(b, "streams", STREAMS, b.settings, b.settings.topic("replies"), w.updates,
                w.records / w.updates, profile=b.plan.profile)
    out["messages"] = b.probe.count(b.settings.topic("messages"))
    out["quarantined"] = b.probe.count(b.settings.topic("quarantine"))
    return out


def passthrough_throughput(b: Bench) -> dict[str, Any]:
    sink = b.create_topic(b.settings.topic("bench-passthrough"))
    source = b.settings.topic("updates")
    return drain(b, "passthrough", _passthrough_args(source, sink), b.settings, sink, b.probe.count(source), 1.0,
                 profile=b.plan.profile)


def client_loop(b: Bench) -> dict[str, Any]:
    source = b.settings.topic("updates")
    sink = b.create_topic(b.settings.topic("bench-confluent"))
    expected = b.probe.count(source)
    loop = consume_produce(b.bootstrap, source, sink, expected, timeout=b.plan.window_s + 30)
    span = b.probe.span(sink)
    return {"outputs": span.count, "complete": loop.records >= expected, "updates_per_s": span.rate(),
            "updates_per_cpu_s": loop.records / loop.cpu_s if loop.cpu_s > 0 else None,
            "cpu_cores_used": loop.cpu_s / loop.wall_s,
            "broker_cores_used": b.broker_cores(span.first_ms / 1000, span.last_ms / 1000)}


# -- latency ------------------------------------------------------------------------------------------------
def paced_latency(b: Bench, source: str, out_topic: str, rate: float, seconds: float,
                  id_of: Callable[[bytes], str], alive: Callable[[], bool]) -> dict[str, Any]:
    """Pace fresh updates into `source` for a warm-up and then `seconds`; latency = output record
    timestamp − the update's timestamp, over the updates sent after the warm-up."""
    warm_up = min(5.0, seconds / 2)
    since = b.probe.end_offsets(out_topic)
    fresh = workload.latency_records(b.workload)
    records = iter([next(fresh) for _ in range(int(rate * (seconds + warm_up)) + 10)])  # encoded before pacing
    started_ms = time.time() * 1000
    sent = workload.paced(records, b.bootstrap, source, rate, seconds + warm_up)
    measured_from = started_ms + warm_up * 1000
    counted = {uid: at for uid, at in sent.items() if at >= measured_from}
    # A consumer that fell behind gets a little time to catch up; what is still missing then is
    # reported as unanswered (the percentiles cover the answered ones only).
    b.probe.wait_count(out_topic, len(sent), since=since, timeout=max(10.0, seconds / 2), stall=10, alive=alive)
    pairs = sorted((counted[uid], msg.timestamp()[1] - counted[uid]) for msg in b.probe.read(out_topic, since)
                   if (uid := id_of(msg.value())) in counted)
    lat = sorted(d for _, d in pairs)
    slices: dict[int, list[int]] = {}
    for at, d in pairs:
        slices.setdefault(int((at - measured_from) // 5000), []).append(d)
    return {"offered_per_s": len(counted) / seconds, "warm_up_s": warm_up, "sent": len(counted),
            "answered": len(lat), "p50_ms": _pct(lat, 0.50), "p99_ms": _pct(lat, 0.99),
            "max_ms": float(lat[-1]) if lat else None,
            "p50_ms_by_5s": [_pct(sorted(v), 0.5) for _, v in sorted(slices.items())]}


def _warm_up(b: Bench, source: str, out_topic: str, alive: Callable[[], bool]) -> None:
    """One record through, so the paced run starts on a consumer that is assigned and running."""
    workload.produce_all(b.bootstrap, source, [workload.encode_update(0, 999_000_001, "warm-up")])
    if b.probe.wait_count(out_topic, 1, timeout=READY_TIMEOUT_S, stall=READY_TIMEOUT_S, alive=alive) < 1:
        raise RuntimeError(f"no answer to the warm-up record on {out_topic}")


def worker_latency(b: Bench, rate: float) -> dict[str, Any]:
    settings = b.phase_settings("lat")
    child, _, sampler = b.start("streams-latency", STREAMS, settings)
    try:
        _warm_up(b, settings.topic("updates"), settings.topic("replies"), child.alive)
        out = paced_latency(b, settings.topic("updates"), settings.topic("replies"), rate, b.plan.latency_s,
                            lambda v: CODEC.decode("reply", v)["causation_id"], child.alive)
        out["quarantined"] = b.probe.count(settings.topic("quarantine"))
        return out
    finally:
        b.stop("streams-latency", child, sampler)


def passthrough_latency(b: Bench, rate: float) -> dict[str, Any]:
    source = b.create_topic(b.settings.topic("bench-lat-in"))
    sink = b.create_topic(b.settings.topic("bench-lat-out"))
    child, _, sampler = b.start("passthrough-latency", _passthrough_args(source, sink), b.settings)
    try:
        _warm_up(b, source, sink, child.alive)
        return paced_latency(b, source, sink, rate, b.plan.baseline_latency_s,
                             lambda v: CODEC.decode("update", v)["update_id"], child.alive)
    finally:
        b.stop("passthrough-latency", child, sampler)


def _passthrough_args(source: str, sink: str) -> list[str]:
    return ["-m", "bench.streams.passthrough", "--source", source, "--sink", sink]


# -- recovery -----------------------------------------------------------------------------------------------
def recovery(b: Bench, startup_s: float) -> dict[str, Any]:
    """Fill the changelogs, start a worker on a fresh data dir, time the reply to a probe update."""
    plan = b.plan
    settings = b.phase_settings("rec")
    tables = changelog.TABLES if plan.recovery_index else ("dedupe",)
    fill_s = changelog.fill_dedupe(settings, b.bootstrap, plan.recovery_keys, with_index=plan.recovery_index)
    out: dict[str, Any] = {"keys": plan.recovery_keys, "changelog_records": plan.recovery_keys * len(tables),
                           "tables": list(tables), "fill_s": fill_s, "startup_baseline_s": startup_s}
    child, spawned, sampler = b.start("streams-recovery", STREAMS, settings)
    recorder = Recorder(child.pid, b.tmp / "streams-recovery.pyspy.txt") if plan.profile else None
    replies = settings.topic("replies")
    try:
        workload.produce_all(b.bootstrap, settings.topic("updates"),
                             [workload.encode_update(0, 999_000_002, "probe after recovery")])
        reached = b.probe.wait_count(replies, 1, timeout=plan.recovery_timeout_s,
                                     stall=plan.recovery_timeout_s, alive=child.alive)
        if recorder is not None:
            folded, recorder = recorder.stop(), None
            out["hotspots"] = summarise(folded) if folded else None
        log = recovery_log(child.output())
        out.update(log)
        if log["recovery_log_s"]:
            out["keys_per_s_log"] = plan.recovery_keys / log["recovery_log_s"]
        if log.get("changelog_records_per_s_progress"):
            out["keys_per_s_progress"] = log["changelog_records_per_s_progress"] / len(tables)
        if reached >= 1:
            total = b.probe.span(replies).first_ms / 1000 - spawned
            seconds = max(total - startup_s, 1e-3)
            out.update(complete=True, probe_answered_after_s=total, recovery_s=seconds,
                       keys_per_s=plan.recovery_keys / seconds,
                       quarantined=b.probe.count(settings.topic("quarantine")))
        else:
            out.update(complete=False, waited_s=time.time() - spawned, worker_alive=child.alive())
            if log.get("worker_ready_after_s") is not None:
                out["stalled_after_recovery"] = _diagnose_stall(b, settings, child)
    finally:
        if recorder is not None:
            recorder.stop()
        b.stop("streams-recovery", child, sampler)
    out["rss_peak_mib"] = sampler.peak_mib
    keys_per_s = out.get("keys_per_s") or out.get("keys_per_s_log") or out.get("keys_per_s_progress")
    out["recovery_s_per_1m_keys"] = 1_000_000 / keys_per_s if keys_per_s else None
    return out


def recovery_log(output: str) -> dict[str, Any]:
    """faust's own account of a recovery, from the worker's JSON log lines: "Restoring state from
    changelog topics" → "Done reading from changelog topics", and the "total remaining=N" progress
    lines (every 5 s), which give a rate even when recovery has not finished."""
    start = done = ready = first = None
    progress: list[tuple[float, int]] = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg, ts = str(rec.get("msg", "")), float(rec.get("ts", 0))
        first = ts if first is None else first
        if "Restoring state from changelog topics" in msg and start is None:
            start = ts
        elif "Done reading from changelog topics" in msg and start is not None:
            done = ts
        elif "Worker ready" in msg and done is not None:
            ready = ts
        elif m := re.search(r"total remaining=(\d+)", msg):
            progress.append((ts, int(m.group(1))))
    out: dict[str, Any] = {"recovery_log_s": done - start if start and done else None,
                           "worker_ready_after_s": ready - first if ready and first else None}
    if len(progress) >= 2:
        (t0, r0), (t1, r1) = progress[0], progress[-1]
        out["changelog_records_per_s_progress"] = (r0 - r1) / (t1 - t0) if t1 > t0 else None
    return out


def _diagnose_stall(b: Bench, settings: Settings, child: Child) -> dict[str, Any]:
    """Recovery finished but the probe got no reply: is the worker consuming at all? A second probe,
    and (with py-spy) where its threads are."""
    workload.produce_all(b.bootstrap, settings.topic("updates"),
                         [workload.encode_update(0, 999_000_003, "second probe")])
    n = b.probe.wait_count(settings.topic("replies"), 1, timeout=20, stall=20, alive=child.alive)
    texts = [CODEC.decode("reply", m.value())["text"] for m in b.probe.read(settings.topic("replies"))] if n else []
    out: dict[str, Any] = {"replies_after_second_probe": texts}
    exe = py_spy()
    if exe and child.alive():
        dump = subprocess.run([exe, "dump", "--pid", str(child.pid)], capture_output=True, text=True, timeout=60)
        path = b.tmp / "stalled-worker.pyspy-dump.txt"
        path.write_text(dump.stdout + dump.stderr)
        out["py_spy_dump"] = str(path)
    return out


def _pct(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])
