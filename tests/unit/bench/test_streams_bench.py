"""The streams bench's pieces that need no broker: the Quix peer's steps on the bench's own records,
the recovery figure from the worker's log lines, the changelog fill's format, the targets and the
summary rows. (The bench itself runs on a real broker: `python -m bench.streams.bench_streams --quick`.)"""

from __future__ import annotations

import json
import time
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.streams import bench_streams, changelog, phases, quix_env, quix_peer, workload
from bench.streams.hotspots import summarise
from botstream.streams.app import derive_local_rows
from botstream.streams.dedupe import parse_expiry_index_key
from botstream.streams.processor import DEDUPE, DEDUPE_INDEX

ROOT = Path(__file__).resolve().parents[3]
WEEK_S = 7 * 24 * 3600


class FakeState:
    """`quixstreams.State` as the peer's steps use it, for one message key."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.ttls: dict[str, timedelta | None] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, ttl: timedelta | None = None) -> None:
        self.values[key] = value
        self.ttls[key] = ttl


# -- the Quix peer ------------------------------------------------------------------------------------------
def test_the_quix_peer_decodes_the_records_the_bench_produces() -> None:
    counts = {"consumed": 0, "dropped": 0, "replies": 0}
    decode = quix_peer.decoder(ROOT / "schemas" / "update.avsc", counts)
    record = workload.encode_update(3, 500_000_003, "hello 3")
    update = decode(record.value)
    assert (update["update_id"], update["chat_id"], update["bot_id"], update["text"]) == \
        ("500000003", "100000003", "echo", "hello 3")
    assert update["platform"] == "telegram" and counts["consumed"] == 1
    with pytest.raises(ValueError):
        decode(b"{}" + record.value[2:])


def test_the_quix_peer_drops_a_redelivery_inside_the_window_and_counts_per_chat() -> None:
    counts = {"consumed": 0, "dropped": 0, "replies": 0}
    keep, reply = quix_peer.dedupe(WEEK_S, counts), quix_peer.echo(counts)
    state = FakeState()
    update = {"platform": "telegram", "bot_id": "echo", "update_id": "7", "chat_id": "1", "text": "hi",
              "correlation_id": "c"}
    assert keep(update, state)
    assert state.ttls["seen:telegram:echo:7"] == timedelta(seconds=WEEK_S)  # expiry through Quix's state TTL
    assert reply(update, state) == {"chat_id": "1", "bot_id": "echo", "causation_id": "7", "correlation_id": "c",
                                    "text": "echo: hi", "count": 1}
    assert not keep(update, state)  # the platform's redelivery
    second = {**update, "update_id": "8"}
    assert keep(second, state) and reply(second, state)["count"] == 2
    assert counts == {"consumed": 0, "dropped": 1, "replies": 2}
    state.values["seen:telegram:echo:7"] = int(time.time() * 1000) - (WEEK_S + 1) * 1000
    assert keep(update, state)  # first seen longer ago than the window: new again


def test_quix_is_a_pinned_bench_tool_never_a_runtime_dependency() -> None:
    pins = quix_env.pinned()
    assert pins["quixstreams"].startswith("3.") and "fastavro" in pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project.get("optional-dependencies", {}).values()
                                          for d in extra]
    assert not [d for d in declared if "quix" in d.lower()]
    assert quix_env.PEER.exists() and "botstream" not in "".join(
        line for line in quix_env.PEER.read_text().splitlines() if line.startswith(("import", "from")))


# -- recovery -----------------------------------------------------------------------------------------------
def log_line(ts: str, msg: str) -> str:
    return json.dumps({"ts": ts, "level": "info", "service": "streams", "logger": "botstream.core.runtime",
                       "msg": msg})


def restored(p: int, n: int, seconds: float, skipped: int = 0) -> str:
    return (f"partition {p} restored: {n} changelog records read, {n - skipped} applied, {skipped} skipped "
            f"(past the committed offset) in {seconds:.2f}s")


def test_recovery_is_timed_from_the_first_partition_start_to_the_last_end() -> None:
    output = "\n".join([
        "not json",
        log_line("2026-12-02T09:15:00.000Z", "worker starting"),
        log_line("2026-12-02T09:15:03.000Z", restored(0, 1000, 2.0)),  # started at :01
        log_line("2026-12-02T09:15:04.500Z", restored(1, 1000, 3.0, skipped=10)),  # started at :01.5
    ])
    log = phases.recovery_log(output)
    assert log["restored_partitions"] == 2
    assert log["restore_log_s"] == pytest.approx(3.5)
    assert log["restore_busy_s"] == pytest.approx(5.0)
    assert (log["changelog_records_read"], log["applied"], log["skipped"]) == (2000, 1990, 10)


def test_a_start_line_wins_over_the_reported_seconds() -> None:
    output = "\n".join([log_line("2026-12-02T09:15:00.000Z", "partition 0 restoring from offset 0"),
                        log_line("2026-12-02T09:15:03.000Z", restored(0, 10, 1.0))])
    assert phases.recovery_log(output)["restore_log_s"] == pytest.approx(3.0)


def test_no_restore_lines_no_log_figure() -> None:
    assert phases.recovery_log(log_line("2026-12-02T09:15:00.000Z", "partition 0 assigned")) == \
        {"restored_partitions": 0, "restore_log_s": None}
    assert phases.log_time(12.5) == 12.5 and phases.log_time("nonsense") is None


def test_the_changelog_fill_is_what_the_worker_restores() -> None:
    now = 1_800_000_000_000
    partition, key, value = changelog.dedupe_record(7, 6, now, 10)
    assert (partition, key) == (1, b"telegram:echo:700000007")
    assert json.loads(value) == {"p": 1, "o": 1, "t": now - 3}
    [(table, index_key, _)] = list(derive_local_rows(DEDUPE, key, value))  # the worker's own restore hook
    assert table == DEDUPE_INDEX and parse_expiry_index_key(index_key) == (now - 3, key)


# -- figures ------------------------------------------------------------------------------------------------
def throughput(rate: float, per_cpu: float) -> dict[str, Any]:
    return {"outputs": 1000, "outputs_expected": 1000, "complete": True, "updates_per_s": rate, "span_s": 1.0,
            "updates_per_cpu_s": per_cpu, "cpu_us_per_update": 1e6 / per_cpu, "cpu_cores_used": 0.9,
            "broker_cores_used": 0.3, "startup_s": 3.0, "rss_peak_mib": 100.0, "hotspots": None}


def latency(p99: float, answered: int = 100) -> dict[str, Any]:
    return {"offered_per_s": 500.0, "warm_up_s": 4.0, "sent": 100, "answered": answered, "p50_ms": p99 / 3,
            "p99_ms": p99, "max_ms": p99, "p50_ms_by_5s": [p99 / 3], "quarantined": 0}


def result(quix: dict[str, Any] | None, p99: float = 40.0, answered: int = 100) -> dict[str, Any]:
    r: dict[str, Any] = {
        "bench": "streams", "updates": 1000, "redeliveries": 50, "chats": 1000, "partitions": 6, "cpus": 2,
        "loadavg_start": 1.0, "loadavg_end": 1.5, "window_s": 20.0, "latency_share": 0.5, "profiled": False,
        "core": {"records": 100, "updates_per_cpu_s": 10_000.0, "us_per_update": 100.0},
        "worker": {**throughput(6000, 5000), "messages": 2000, "quarantined": 0,
                   "latency": latency(p99, answered)},
        "passthrough": {**throughput(8000, 8000), "latency": latency(10.0)},
        "confluent": {"outputs": 1050, "complete": True, "updates_per_s": 50_000.0, "updates_per_cpu_s": 60_000.0,
                      "cpu_cores_used": 0.8, "broker_cores_used": 0.5},
        "recovery": {"keys": 200_000, "changelog_records": 200_000, "tables": ["dedupe"], "complete": True,
                     "recovery_s": 2.0, "recovery_from": "worker log", "keys_per_s": 100_000.0,
                     "recovery_s_per_1m_keys": 10.0, "restore_log_s": 2.0, "restore_busy_s": 9.0,
                     "restored_partitions": 6, "changelog_records_read": 200_000, "applied": 200_000, "skipped": 0,
                     "applied_all_keys": True, "probe_answered_after_s": 6.0, "recovery_probe_s": 3.0,
                     "startup_baseline_s": 3.0},
        "rss_peaks_mib": {"streams": 300.0, "streams-latency": 250.0, "passthrough": 120.0},
    }
    if quix is not None:
        r["quix"] = quix
        if "updates_per_s" in quix:
            r["rss_peaks_mib"]["quix"] = 150.0
    return r


def test_targets_are_issue_14s() -> None:
    quix = {**throughput(10_000, 8000), "counts": {"consumed": 1050, "dropped": 50, "replies": 1000},
            "commit_interval_s": 0.1, "versions": {"quixstreams": "3.28.1"}}
    r = bench_streams.with_ratios(result(quix))
    assert r["ratios"]["worker_vs_quix"] == pytest.approx(0.6)
    assert r["ratios"]["worker_vs_quix_per_cpu_s"] == pytest.approx(0.625)
    assert r["targets"] == {"worker_vs_quix_ge_0.5": True, "latency_p99_le_50ms": True,
                            "recovery_1m_keys_le_15s": True, "cpu_per_update_le_200us": True}
    text = "\n".join(bench_streams.render(r))
    assert "quix streams 3.28.1" in text and "worker/this 0.60" in text
    assert "streams worker / Quix ≥ 0.5 (same run) ........... met (0.60" in text
    assert "worker CPU per update ≤ 200 µs ............ met (200 µs" in text
    json.dumps(bench_streams.jsonable(r))

    figs = {f.name: f for f in report.streams(r)}
    vs_quix = figs["worker throughput vs Quix Streams"]
    assert (vs_quix.value, vs_quix.baseline, vs_quix.ratio, vs_quix.met) == (6000, 10_000, 0.6, True)
    assert figs["worker CPU per update"].value == pytest.approx(200.0)
    assert figs["recovery s per 1M dedupe keys"].ratio == pytest.approx(10 / 15, abs=1e-3)


def test_profiles_of_the_runs_are_in_the_summary(tmp_path: Path) -> None:
    folded = tmp_path / "latency.pyspy.txt"
    folded.write_text("process 1;<module> (x.py:1);run (botstream/core/runtime.py:10);_checkpoint "
                      "(botstream/core/runtime.py:20) 30\nprocess 1;<module> (x.py:1);poll (producer.py:5) 10\n")
    r = result(None)
    r["worker"]["latency"]["hotspots"] = summarise(folded)
    text = "\n".join(bench_streams.render(bench_streams.with_ratios(r)))
    assert "hot spots, streams worker, latency run (py-spy, samples holding the GIL):" in text and "40 samples" in text
    assert bench_streams.jsonable(r)["worker"]["latency"]["hotspots"]["samples"] == 40


def test_missed_and_unmeasured_targets_say_so() -> None:
    r = bench_streams.with_ratios(result({"error": "pip install failed"}, p99=80.0))
    assert r["targets"]["worker_vs_quix_ge_0.5"] is None and r["targets"]["latency_p99_le_50ms"] is False
    text = "\n".join(bench_streams.render(r))
    assert "not measured: pip install failed" in text and "NOT met (80 ms = 1.60x the target" in text
    # more than 1 % of the paced updates unanswered: the p99 cannot be among the answered ones
    r = bench_streams.with_ratios(result(None, p99=10.0, answered=90))
    assert r["targets"]["latency_p99_le_50ms"] is False and "quix" not in "\n".join(bench_streams.render(r))
