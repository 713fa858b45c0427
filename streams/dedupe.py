"""Dedupe decisions (sans-IO): is this update new, a platform redelivery, or our own reprocessing?

The table maps (platform, bot, platform update id) to where the update was first seen: the Kafka
partition and offset of the record, and the time. A record with a known id at a *different* position
is a platform redelivery → drop. The *same* position means this worker crashed after recording the id
but before committing the offset → process again (reply ids are deterministic, and the sink's ledger
skips what was already delivered). An entry older than the window counts as absent, whether or not the
sweep has deleted it yet, so the window is exact even between sweeps.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypedDict


class Seen(TypedDict):
    p: int  # partition
    o: int  # offset
    t: int  # first seen, ms


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REPROCESS = "reprocess"


def dedupe_key(update: dict[str, Any]) -> bytes:
    return f"{update['platform']}:{update['bot_id']}:{update['update_id']}".encode()


def decide(seen: Seen | None, partition: int, offset: int, now_ms: int, window_ms: int) -> Verdict:
    if seen is None or now_ms - seen["t"] > window_ms:
        return Verdict.NEW
    if seen["p"] == partition and seen["o"] == offset:
        return Verdict.REPROCESS
    return Verdict.DUPLICATE


def expiry_index_key(first_seen_ms: int, key: bytes) -> bytes:
    """Index keys sort by time (RocksDB orders keys bytewise), so a sweep reads oldest first."""
    return b"%013d|" % first_seen_ms + key


def parse_expiry_index_key(index_key: bytes) -> tuple[int, bytes]:
    ts, _, key = index_key.partition(b"|")
    return int(ts), key
