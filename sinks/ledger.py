"""The delivery ledger: what became of each reply id, so no reply is sent twice.

Reply ids are deterministic (derived from the causing update), so every way a reply can come back —
a Kafka redelivery after a crash or rebalance, a stale retry-chain record, streams reprocessing an
update — arrives with the id the ledger already knows. The sink looks the id up before sending and
writes it right after the platform accepted the message.

Entries: {"s": status, "m": platform message id, "t": unix ms}. Status "delivered" stops every later
copy; a final failure ("dead_lettered", "failed_permanent") stops redeliveries too, but not an
operator's replay from the DLQ, which is the point of replaying. `sweep` deletes entries older than
the window in which a copy can still arrive (the replies topics' retention), explicitly: RocksDB keeps
what it is given, and a table that only grows is a disk that fills.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DELIVERED", "FINAL_FAILURES", "DeliveryLedger", "LedgerEntry"]

DELIVERED = "delivered"
FINAL_FAILURES = frozenset({"dead_lettered", "failed_permanent"})


@dataclass(frozen=True)
class LedgerEntry:
    status: str
    message_id: str | None
    at_ms: int

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LedgerEntry:
        return cls(str(raw.get("s")), raw.get("m"), int(raw.get("t") or 0))


class DeliveryLedger:
    """`table`: the ledger as the current event sees it. `write_fact`, when given, is how a delivery
    is recorded: at once and for good (a fact about the platform, not state derived from the input:
    a reply re-read after a crash must find it, whatever happened to the offsets). Final failures are
    written through `table` like any state: they become durable with the DLQ record they go with."""

    def __init__(self, table: MutableMapping[bytes, Any],
                 write_fact: Callable[[bytes, Any], None] | None = None) -> None:
        self._table = table
        self._write_fact = write_fact

    def get(self, reply_id: str) -> LedgerEntry | None:
        raw = self._table.get(reply_id.encode())
        return LedgerEntry.from_json(raw) if raw else None

    def forget_failure(self, reply_id: str) -> bool:
        """An operator replays a dead-lettered reply: its final failure no longer stands in the way.
        A delivered reply stays delivered (a replay of it is a duplicate). True when forgotten."""
        entry = self.get(reply_id)
        if entry is None or entry.delivered:
            return False
        del self._table[reply_id.encode()]
        return True

    def record(self, reply_id: str, status: str, at_ms: int, message_id: str | None = None) -> None:
        entry = {"s": status, "m": message_id, "t": at_ms}
        if status == DELIVERED and self._write_fact is not None:
            self._write_fact(reply_id.encode(), entry)
        else:
            self._table[reply_id.encode()] = entry

    def sweep(self, items: Iterable[tuple[bytes, Any]], cutoff_ms: int, limit: int = 1000) -> tuple[int, bytes | None]:
        """Delete entries written before `cutoff_ms` among `items` (one partition's keys, from a
        cursor). Returns (deleted, last key looked at) so the next sweep goes on from there."""
        deleted = 0
        last: bytes | None = None
        for n, (key, raw) in enumerate(items):
            if n >= limit:
                break
            last = key
            if isinstance(raw, bytes | bytearray):  # a store's raw value: the table's JSON
                try:
                    raw = json.loads(raw)
                except ValueError:
                    continue
            if isinstance(raw, Mapping) and int(raw.get("t") or 0) < cutoff_ms:
                del self._table[key]
                deleted += 1
        return deleted, last
