"""Fault scenarios on the real topology, under steady signed load with ~10 % platform redeliveries.

Each scenario sends signed Telegram webhooks (bench/e2e/load.py: unique update ids, a chat's updates
one after the other, every non-2xx redelivered for up to a minute as a platform does) while a fault
strikes, then waits until every acknowledged update ended somewhere and checks:
- lost = 0: every update that got a 2xx has a reply delivered in the sandbox, a non-delivered
  DeliveryResult on `deliveries` or a record on `replies.dlq` (matched by update id);
- overtakes = 0: per chat, replies arrived in the order of the updates (first copy of each), and the
  sandbox's own check of X-Botstream-Seq (order_violations) did not grow;
- duplicates delivered are counted (reported, not asserted: the ledger makes them rare, not impossible).
Recovery time: from the fault to the first reply delivered for an update first sent after it.

The results table is printed and written to bench/results/faults-<stamp>.md; a failed scenario copies
every log of the pipeline to bench/results/raw/faults-<stamp>/<scenario>/ and names it.

    make faults          # or: .venv/bin/python -m pytest tests/e2e/faults -m faults
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.e2e.load import LoadRun, judge
from bench.e2e.topology import Topology
from tests.pipeline import TopicReader

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

ROOT = Path(__file__).resolve().parents[3]
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
RESULTS_MD = ROOT / "bench" / "results" / f"faults-{STAMP}.md"
LOG_ROOT = ROOT / "bench" / "results" / "raw" / f"faults-{STAMP}"
ENV = {"BOTSTREAM_RETRY_DELAYS_S": "1,2,4", "BOTSTREAM_MAX_ATTEMPTS": "5", "BOTSTREAM_ACK_TIMEOUT_S": "2"}
RATE, SECONDS, FAULT_AT, CHATS = 300.0, 20.0, 6.0, 1500
SETTLE_S = 150.0


@dataclass
class Row:
    scenario: str
    sent: int
    acked: int
    lost: int
    overtakes: int
    duplicates: int
    recovery_s: float | None
    non_2xx: dict[Any, int]
    ok: bool
    note: str = ""


ROWS: list[Row] = []
_next_id = [10_000_000]


def first_id() -> int:
    _next_id[0] += 1_000_000
    return _next_id[0]


@pytest.fixture(scope="module", autouse=True)
def results_table() -> Iterator[None]:
    yield
    if not ROWS:
        return
    lines = [f"# botstream fault suite {STAMP}", "",
             f"load: {RATE:g} updates/s over {CHATS} chats for {SECONDS:g}s, ~10 % redeliveries, fault at {FAULT_AT:g}s",
             "", "| scenario | updates sent | acked | lost | overtakes | duplicates delivered | recovery s | non-2xx seen | result |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in ROWS:
        rec = "–" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        lines.append(f"| {r.scenario} | {r.sent} | {r.acked} | {r.lost} | {r.overtakes} | {r.duplicates} | {rec} | "
                     f"{r.non_2xx or '–'} | {'ok' if r.ok else 'FAILED'}{(' — ' + r.note) if r.note else ''} |")
    text = "\n".join(lines) + "\n"
    RESULTS_MD.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_MD.write_text(text)
    sys.__stdout__.write("\n" + text + f"\n(written to {RESULTS_MD})\n")


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    t = Topology(tmp_path_factory.mktemp("faults"), partitions=4, extra_env=ENV)
    t.start()
    try:
        yield t
    finally:
        t.stop()


def recorded_failures(topo: Topology, readers: dict[str, TopicReader]) -> set[int]:
    """Update ids named by a non-delivered DeliveryResult or a DLQ record."""
    out: set[int] = set()
    for r in readers.values():
        r.poll(0.5)
    for _, v, _ in readers["deliveries"].items:
        if v.get("outcome") in ("failed_permanent", "dead_lettered") and str(v.get("correlation_id", "")).startswith("u"):
            out.add(int(v["correlation_id"][1:]))
    for _, v, _ in readers["dlq"].items:
        try:
            out.add(int(v.get("causation_id")))
        except (TypeError, ValueError):
            pass
    return out


def keep_logs(topo: Topology, name: str) -> Path:
    dest = LOG_ROOT / re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-")
    dest.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    for svc in topo.services.values():  # where is a stuck worker stuck?
        if svc.alive() and spy.exists():
            out = subprocess.run([str(spy), "dump", "--pid", str(svc.pid)], capture_output=True, text=True, timeout=60)
            (dest / f"py-spy-{svc.name}.txt").write_text(out.stdout + out.stderr)
    for f in topo.log_files():
        try:
            shutil.copy(f, dest / f"{f.parent.name}-{f.name}" if f.parent.name.startswith("node") else dest / f.name)
        except OSError:
            pass
    return dest


def run_scenario(topo: Topology, name: str, fault: Callable[[Topology], None] | None, *, copies: int = 1,
                 rate: float = RATE, seconds: float = SECONDS, fault_at: float = FAULT_AT) -> Row:
    """Load + fault, then wait until every acknowledged update ended somewhere; record and assert."""
    readers = {"deliveries": TopicReader(topo.bootstrap, topo.topic("deliveries"), "delivery_result"),
               "dlq": TopicReader(topo.bootstrap, topo.topic("replies.dlq"), "reply")}
    violations_before = int(topo.sandbox_stats().get("order_violations", 0))
    run = LoadRun(topo.ports["ingest"], chats=CHATS, first_id=first_id(), redeliver=0.1, copies=copies,
                  retry_non_2xx_s=90.0, connections=32, seed=hash(name) & 0xFFFF)
    fault_ms: list[float] = []

    # The load runs in a thread and the fault in this (main) thread: a service restarted by the fault is
    # started with PR_SET_PDEATHSIG, which fires when the *thread* that started it ends, so it must not be
    # started from a short-lived thread (asyncio.to_thread's executor ends with the load's event loop).
    load_error: list[BaseException] = []

    def load() -> None:
        try:
            asyncio.run(run.open_loop(rate, seconds))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            load_error.append(exc)

    note = ""
    outcome = None
    try:
        loader = threading.Thread(target=load, name="load")
        loader.start()
        if fault is not None:
            time.sleep(fault_at)
            fault_ms.append(time.time() * 1000)
            fault(topo)
        loader.join()
        if load_error:
            raise load_error[0]
        deadline = time.monotonic() + SETTLE_S
        while True:
            recorded = recorded_failures(topo, readers)
            outcome = judge(run.updates, topo.sandbox_deliveries(), topo.sandbox_stats(), recorded)
            if not outcome.lost or time.monotonic() > deadline:
                break
            time.sleep(2)
        time.sleep(2)  # late copies (duplicates) and order checks of the last replies
        outcome = judge(run.updates, topo.sandbox_deliveries(), topo.sandbox_stats(), recorded_failures(topo, readers))
    except Exception as exc:  # noqa: BLE001 - reported in the row and re-raised below
        note = f"{type(exc).__name__}: {exc}"
    finally:
        for r in readers.values():
            r.close()
    recovery = None
    if fault_ms and outcome is not None:
        after = {u.uid: u for u in run.updates if u.sent_wall_ms >= fault_ms[0]}
        from bench.e2e.load import delivered_index

        firsts = [min(d["arrival_ms"] for d in ds) for uid, ds in delivered_index(topo.sandbox_deliveries()).items()
                  if uid in after]
        recovery = (min(firsts) - fault_ms[0]) / 1000 if firsts else None
    order_violations = (outcome.order_violations - violations_before) if outcome else 0
    overtakes = (outcome.overtakes if outcome else 0) + max(0, order_violations)
    lost = len(outcome.lost) if outcome else -1
    ok = outcome is not None and lost == 0 and overtakes == 0 and not note
    row = Row(name, len(run.updates), outcome.acked if outcome else 0, lost, overtakes,
              outcome.duplicates if outcome else 0, recovery,
              {str(k): v for k, v in run.non_2xx.items()}, ok, note)
    if not ok:
        row.note = (row.note + f" logs: {keep_logs(topo, name)}").strip()
        if outcome is not None and outcome.lost:
            row.note += f" lost ids (first 10): {outcome.lost[:10]}"
        for svc in ("streams", "sinks", "ingest"):  # a fresh start for the next scenario on this pipeline
            if svc in topo.services:
                topo.restart(svc)
    ROWS.append(row)
    assert ok, row
    return row


# -- scenarios that reuse the workers' own machinery -------------------------------------------------

def _kill_restart(service: str) -> Callable[[Topology], None]:
    def fault(topo: Topology) -> None:
        topo.kill9(service)
        topo.restart(service)
    return fault


@pytest.mark.timeout(600)
def test_kill9_sinks_worker(topo: Topology) -> None:
    run_scenario(topo, "kill -9 sinks worker (restarted)", _kill_restart("sinks"))


@pytest.mark.timeout(600)
def test_kill9_ingest(topo: Topology) -> None:
    run_scenario(topo, "kill -9 ingest (restarted)", _kill_restart("ingest"))


@pytest.mark.timeout(600)
def test_kill9_streams_worker(topo: Topology) -> None:
    run_scenario(topo, "kill -9 streams worker (restarted)", _kill_restart("streams"))


@pytest.mark.timeout(600)
def test_webhook_retry_storm(topo: Topology) -> None:
    run_scenario(topo, "retry storm (every update 3x concurrently)", None, copies=3)


def _sandbox_fault(patch: dict[str, Any], reset: dict[str, Any], hold_s: float = 6.0) -> Callable[[Topology], None]:
    def fault(topo: Topology) -> None:
        topo.sandbox_config(patch)
        time.sleep(hold_s)
        topo.sandbox_config(reset)
    return fault


@pytest.mark.timeout(600)
def test_sandbox_5xx_burst(topo: Topology) -> None:
    run_scenario(topo, "sandbox 5xx burst (50 % for 6 s)",
                 _sandbox_fault({"faults": {"ratio_5xx": 0.5}}, {"faults": {"ratio_5xx": 0.0}}))


@pytest.mark.timeout(600)
def test_sandbox_5xx_after_delivery(topo: Topology) -> None:
    """The response is lost after the message was delivered: the case that makes senders duplicate."""
    run_scenario(topo, "sandbox 5xx after delivery (30 % for 6 s)",
                 _sandbox_fault({"faults": {"ratio_5xx": 0.3, "after_delivery": True}},
                                {"faults": {"ratio_5xx": 0.0, "after_delivery": False}}))


@pytest.mark.timeout(600)
def test_sandbox_latency(topo: Topology) -> None:
    run_scenario(topo, "sandbox latency (exp. mean 300 ms for 6 s)",
                 _sandbox_fault({"faults": {"latency": {"kind": "exponential", "mean_ms": 300, "cap_ms": 3000}}},
                                {"faults": {"latency": {"kind": "none"}}}))


@pytest.mark.timeout(600)
def test_sandbox_429_storm(topo: Topology) -> None:
    run_scenario(topo, "sandbox 429 storm (bot limit 5/s for 6 s)",
                 _sandbox_fault({"limits": {"telegram": {"enabled": True, "per_bot_per_second": 5, "per_bot_burst": 5,
                                                          "per_chat_per_second": 1000, "per_chat_burst": 1000}}},
                                {"limits": {"telegram": {"enabled": False}}}))


# -- the broker ------------------------------------------------------------------------------------

@pytest.mark.timeout(600)
def test_single_node_broker_restart(topo: Topology) -> None:
    if topo.kafka is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: the broker is not ours to restart")

    def fault(t: Topology) -> None:
        assert t.kafka is not None
        t.kafka.stop_node(1, grace=20)
        time.sleep(3)
        t.kafka.start_node(1, timeout=120)

    run_scenario(topo, "single-node broker restart", fault)


@pytest.mark.timeout(900)
def test_kill9_one_broker_of_three(tmp_path: Path) -> None:
    if __import__("os").environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: the brokers are not ours to kill")
    t = Topology(tmp_path, partitions=4, kafka_nodes=3, kafka_heap="256m", extra_env=ENV)
    t.start()
    try:
        def fault(topo: Topology) -> None:
            assert topo.kafka is not None
            topo.kafka.stop_node(2, kill=True)
            time.sleep(8)
            topo.kafka.start_node(2, timeout=120)

        run_scenario(t, "kill -9 one broker of three (restarted)", fault)
    finally:
        t.stop()
