"""The measurements of bench_streams, one function per phase, all on one broker.

Every phase that needs an idle consumer gets its own topics (a prefix per phase for the streams
worker, a topic pair for the pass-through), so no phase inherits another's backlog. Child processes
are started through `tests.processes.ProcessGroup` (logged to files, tied to this process, stopped by
pid) and watched from /proc; topics are watched by high watermark, and read only once a phase is over.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from bench.streams import changelog, quix_env, workload
from bench.streams.confluent_loop import consume_produce
from bench.streams.hotspots import Recorder, py_spy, summarise
from bench.streams.procstat import ProcessSampler
from bench.streams.topic_probe import TopicProbe
from botstream.core.kafka import producer_config
from botstream.core.processes import die_with_parent
from botstream.core.runtime import RuntimeOptions
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
    recovery_timeout_s: float
    profile: bool
    quix: bool = True        # run the Quix Streams peer (its own virtualenv, see bench.streams.quix_env)


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
    quix_python: Path | None = None  # the Quix peer's virtualenv python, once made
    rss_peaks_mib: dict[str, float] = field(default_factory=dict)

    def env(self, name: str, settings: Settings) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BOTSTREAM_TOPIC_PREFIX": settings.topic_prefix,
                "BOTSTREAM_PARTITIONS": str(settings.partitions), "BOTSTREAM_BOTS_FILE": str(self.bots_file),
                "BOTSTREAM_DATA_DIR": str(self.tmp / f"data-{name}"), "BOTSTREAM_LOG_LEVEL": "INFO",
                "BOTSTREAM_LOG_FORMAT": "json", "BOTSTREAM_STREAMS_WEB_PORT": str(free_port())}

    def start(self, name: str, args: list[str], settings: Settings,
              python: Path | None = None) -> tuple[Child, float, ProcessSampler]:
        """A child on this Python (`args` after the interpreter), or on `python` (another virtualenv:
        then with neither this project's settings nor its PYTHONPATH in the environment)."""
        spawned = time.time()
        if python is None:
            child = self.processes.start(name, args, env=self.env(name, settings), cwd=ROOT)
        else:
            child = spawn(self.processes, name, [str(python), *args])
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

    def create_topic(self, name: str, config: dict[str, str] | None = None) -> str:
        admin = admin_client(self.settings, self.bootstrap)
        admin.create_topics([NewTopic(name, self.settings.partitions, self.settings.replication_factor,
                                      config=config or {})])[name].result(30)
        return name

    def broker_cores(self, start_s: float, end_s: float) -> float | None:
        if self.broker is None or end_s <= start_s:
            return None
        return self.broker.cpu_between(start_s, end_s) / (end_s - start_s)


def spawn(group: ProcessGroup, name: str, argv: list[str]) -> Child:
    """`ProcessGroup.start` for an interpreter other than this one: logged to a file, tied to this
    process, stopped with the group; the environment without PYTHONPATH and this virtualenv's marks."""
    group.log_dir.mkdir(parents=True, exist_ok=True)
    log = group.log_dir / f"{name}-{len(group.children)}.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("BOTSTREAM_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=ROOT, preexec_fn=die_with_parent)
    child = Child(name, proc, log)
    group.children.append(child)
    return child


# -- throughput ---------------------------------------------------------------------------------------------
def drain(b: Bench, name: str, args: list[str], settings: Settings, out_topic: str, expected: int,
          records_per_output: float, profile: bool = False, python: Path | None = None) -> dict[str, Any]:
    """Start a consumer process on a backlog; rate from the first to the last output record timestamp,
    within `plan.window_s` of the first output; CPU of that process over the same span."""
    child, spawned, sampler = b.start(name, args, settings, python=python)
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
    per_cpu_s = consumed / cpu if cpu > 0 else None
    return {
        "outputs": span.count, "outputs_expected": expected, "complete": span.count >= expected,
        "updates_per_s": span.rate() * records_per_output, "span_s": span.seconds,
        "updates_per_cpu_s": per_cpu_s, "cpu_us_per_update": 1e6 / per_cpu_s if per_cpu_s else None,
        "cpu_cores_used": cpu / span.seconds, "log": str(child.log),
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


def quix_throughput(b: Bench) -> dict[str, Any]:
    """The same backlog, the same work (decode, dedupe with a 7-day window, per-chat counter, echo
    reply) in Quix Streams, in its own process and virtualenv (`bench/streams/quix_peer.py`).
    Its sink records carry the broker's append time (Quix stamps outputs with the input's timestamp)."""
    if b.quix_python is None:
        raise RuntimeError("the Quix peer's virtualenv is not there")
    w, settings = b.workload, b.settings
    sink = b.create_topic(settings.topic("bench-quix"), {"message.timestamp.type": "LogAppendTime"})
    args = [str(quix_env.PEER), "--bootstrap", b.bootstrap, "--source", settings.topic("updates"), "--sink", sink,
            "--group", f"{settings.topic_prefix}-quix-{uuid.uuid4().hex[:6]}", "--state-dir", str(b.tmp / "quix-state"),
            "--schema", str(ROOT / "schemas" / "update.avsc"),
            "--commit-interval", str(RuntimeOptions().checkpoint_interval_s),
            "--window-s", str(settings.dedupe_window_s),
            "--linger-ms", str(producer_config(settings)["linger.ms"])]
    out = drain(b, "quix", args, settings, sink, w.updates, w.records / w.updates, profile=b.plan.profile,
                python=b.quix_python)
    out["counts"] = _last_json(Path(out["log"]).read_text(errors="replace"), "quix_peer")
    out["commit_interval_s"] = RuntimeOptions().checkpoint_interval_s
    return out


def _last_json(text: str, key: str) -> Any:
    for line in reversed(text.splitlines()):
        if line.startswith("{") and key in line:
            try:
                return json.loads(line).get(key)
            except ValueError:
                continue
    return None


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
                   if (uid := id_of(msg.value() or b"")) in counted)
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
    recorder = None
    try:
        _warm_up(b, settings.topic("updates"), settings.topic("replies"), child.alive)
        recorder = Recorder(child.pid, b.tmp / "streams-latency.pyspy.txt") if b.plan.profile else None
        out = paced_latency(b, settings.topic("updates"), settings.topic("replies"), rate, b.plan.latency_s,
                            lambda v: CODEC.decode("reply", v)["causation_id"], child.alive)
        if recorder is not None:
            folded, recorder = recorder.stop(), None
            out["hotspots"] = summarise(folded) if folded else None
        out["quarantined"] = b.probe.count(settings.topic("quarantine"))
        return out
    finally:
        if recorder is not None:
            recorder.stop()
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
# The worker's own account of a restore (botstream.core.runtime), one line per partition:
#   "partition 3 restored: 166667 changelog records read, 166667 applied, 0 skipped (...) in 2.41s"
# and, should the runtime log one, a start line "partition 3 restoring ...".
RESTORED = re.compile(r"partition (\d+) restored: (\d+) changelog records read, (\d+) applied, (\d+) skipped"
                      r".*? in ([\d.]+)s")
RESTORING = re.compile(r"partition (\d+) restoring")


def recovery(b: Bench, startup_s: float) -> dict[str, Any]:
    """Fill the dedupe changelog with `plan.recovery_keys` keys, start a worker on a fresh data dir.

    The recovery time is the worker's own: from the first partition's restore start to the last one's
    end, across partitions, out of its log lines (a start is the "restoring" line when the runtime
    logs one, else the "restored" line's time minus the seconds it reports). A probe update produced
    at start-up checks the worker answers once restored, and gives a second figure: the reply's time
    minus the start-up time of the throughput run (empty changelogs)."""
    plan = b.plan
    settings = b.phase_settings("rec")
    fill_s = changelog.fill_dedupe(settings, b.bootstrap, plan.recovery_keys)
    out: dict[str, Any] = {"keys": plan.recovery_keys, "changelog_records": plan.recovery_keys,
                           "tables": ["dedupe"], "fill_s": fill_s, "startup_baseline_s": startup_s}
    child, spawned, sampler = b.start("streams-recovery", STREAMS, settings)
    recorder = Recorder(child.pid, b.tmp / "streams-recovery.pyspy.txt") if plan.profile else None
    replies = settings.topic("replies")
    try:
        workload.produce_all(b.bootstrap, settings.topic("updates"),
                             [workload.encode_update(0, 999_000_002, "probe after recovery")])
        reached = b.probe.wait_count(replies, 1, timeout=plan.recovery_timeout_s,
                                     stall=plan.recovery_timeout_s, alive=child.alive)
        # The probe's partition may be restored before the others: wait for every partition's line.
        deadline = spawned + plan.recovery_timeout_s
        while (reached >= 1 and child.alive() and time.time() < deadline
               and recovery_log(child.output())["restored_partitions"] < settings.partitions):
            time.sleep(0.25)
        if recorder is not None:
            folded, recorder = recorder.stop(), None
            out["hotspots"] = summarise(folded) if folded else None
        if reached < 1:
            out.update(waited_s=time.time() - spawned, worker_alive=child.alive())
            if recovery_log(child.output())["restored_partitions"] >= settings.partitions and child.alive():
                out["stalled_after_recovery"] = _diagnose_stall(b, settings, child)
    finally:
        if recorder is not None:
            recorder.stop()
        b.stop("streams-recovery", child, sampler)
    out["rss_peak_mib"] = sampler.peak_mib
    out["log"] = str(child.log)
    log = recovery_log(child.output())
    out.update(log)
    out["restored_all_partitions"] = log["restored_partitions"] >= settings.partitions
    out["applied_all_keys"] = log.get("applied") == plan.recovery_keys
    if reached >= 1:
        total = b.probe.span(replies).first_ms / 1000 - spawned
        out.update(probe_answered_after_s=total, recovery_probe_s=max(total - startup_s, 1e-3),
                   quarantined=b.probe.count(settings.topic("quarantine")))
    if log["restore_log_s"] is not None and out["restored_all_partitions"]:
        out["recovery_s"], out["recovery_from"] = log["restore_log_s"], "worker log"
    elif reached >= 1:
        out["recovery_s"], out["recovery_from"] = out["recovery_probe_s"], "probe reply − start-up"
    else:
        out["recovery_s"], out["recovery_from"] = None, None
    out["complete"] = reached >= 1 and out["recovery_s"] is not None
    seconds = out["recovery_s"]
    out["keys_per_s"] = plan.recovery_keys / seconds if seconds else None
    out["recovery_s_per_1m_keys"] = seconds * 1_000_000 / plan.recovery_keys if seconds else None
    return out


def recovery_log(output: str) -> dict[str, Any]:
    """The restore as the worker logged it (JSON lines): the span from the first partition's start to
    the last one's end, and the records read, applied and skipped, summed over partitions."""
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    totals = {"changelog_records_read": 0, "applied": 0, "skipped": 0}
    busy = 0.0
    for line in output.splitlines():
        if not line.startswith("{") or "partition" not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg, ts = str(rec.get("msg", "")), log_time(rec.get("ts"))
        if ts is None:
            continue
        if m := RESTORED.search(msg):
            partition, seconds = int(m.group(1)), float(m.group(5))
            starts.setdefault(partition, ts - seconds)
            ends[partition] = max(ts, ends.get(partition, ts))
            totals["changelog_records_read"] += int(m.group(2))
            totals["applied"] += int(m.group(3))
            totals["skipped"] += int(m.group(4))
            busy += seconds
        elif m := RESTORING.search(msg):
            starts.setdefault(int(m.group(1)), ts)
    if not ends:
        return {"restored_partitions": 0, "restore_log_s": None}
    first = min(starts[p] for p in ends)
    return {"restored_partitions": len(ends), "restore_log_s": max(ends.values()) - first,
            "restore_busy_s": busy, **totals}


def log_time(value: Any) -> float | None:
    """A log line's `ts` as unix time: ISO 8601 ("2026-12-02T09:15:03.042Z") or a number."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _diagnose_stall(b: Bench, settings: Settings, child: Child) -> dict[str, Any]:
    """Recovery finished but the probe got no reply: is the worker consuming at all? A second probe,
    and (with py-spy) where its threads are."""
    workload.produce_all(b.bootstrap, settings.topic("updates"),
                         [workload.encode_update(0, 999_000_003, "second probe")])
    n = b.probe.wait_count(settings.topic("replies"), 1, timeout=20, stall=20, alive=child.alive)
    texts = [CODEC.decode("reply", m.value() or b"")["text"] for m in b.probe.read(settings.topic("replies"))] if n else []
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
