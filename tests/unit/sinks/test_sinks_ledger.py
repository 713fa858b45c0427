"""DeliveryLedger: what stops a reply from being sent twice, and how old entries go."""

from __future__ import annotations

import json
from typing import Any

from botstream.sinks.ledger import DeliveryLedger


def test_a_recorded_fate_is_found_and_a_replay_forgets_only_failures() -> None:
    table: dict[bytes, Any] = {}
    ledger = DeliveryLedger(table)
    assert ledger.get("r1") is None
    ledger.record("r1", "delivered", 1_000, "m-9")
    ledger.record("r2", "dead_lettered", 2_000)
    entry = ledger.get("r1")
    assert entry is not None and entry.delivered and entry.message_id == "m-9" and entry.at_ms == 1_000
    assert ledger.forget_failure("r1") is False  # a delivered reply stays delivered
    assert ledger.forget_failure("r2") is True and ledger.get("r2") is None
    assert ledger.forget_failure("unknown") is False
    assert table == {b"r1": {"s": "delivered", "m": "m-9", "t": 1_000}}


def test_sweep_deletes_old_entries_from_a_cursor_and_reads_raw_store_values() -> None:
    table: dict[bytes, Any] = {}
    ledger = DeliveryLedger(table)
    for n in range(6):
        ledger.record(f"r{n}", "delivered", n * 100)
    # what a RocksDB partition yields: raw keys and the JSON the table serialised
    items = [(k, json.dumps(v).encode()) for k, v in sorted(table.items())]
    deleted, last = ledger.sweep(iter(items), cutoff_ms=300, limit=4)
    assert (deleted, last) == (3, b"r3")
    assert sorted(table) == [b"r3", b"r4", b"r5"]
    deleted, last = ledger.sweep(iter([(b"bad", b"not json"), (b"r4", table[b"r4"])]), cutoff_ms=10_000)
    assert (deleted, last) == (1, b"r4") and sorted(table) == [b"r3", b"r5"]
