"""One partition's state: a RocksDB database (rocksdict) with a write cache, written once per checkpoint.

Why not Faust's tables: every `table[key] = value` there is a RocksDB put, a changelog send and a
second put when the send is acknowledged. Here a write only lands in memory; at a checkpoint each
dirty key yields ONE changelog record (ten updates of one chat: one record) and the database gets ONE
`WriteBatch`. That is how quix-streams keeps state, and what this module does, for a worker whose
events of different chats finish out of order:

- every write is tagged with the input position that caused it, `(topic, offset)`, and kept as a
  version of its key until a checkpoint; reads see the newest version (then what the last checkpoint
  flushed, then the database), so an event reads what the events before it in its chat wrote;
- a checkpoint covers, per input topic of the partition, the offsets below the *committable* offset
  (every earlier event done). For each key it takes the newest version of the longest run of
  versions that are all covered; versions written by events past that offset (a slow chat holds the
  offset back) stay in memory for a later checkpoint. So the changelog and the database never hold
  the effect of an event whose offset is not about to be committed;
- each changelog record carries the input position of the write it holds (header
  `botstream-source`); restore skips records at or past the committed offset of their input (those
  events are processed again), see `botstream.core.state.restore`;
- order of a checkpoint (`botstream.core.state.checkpoint`): changelog and outputs flushed, then the
  input offsets committed, then the `WriteBatch`. A crash between any two steps leaves the database
  behind the committed offsets, never ahead, and the changelog says how to catch up.

Tables are column families of the partition's one database; a table without a changelog topic is
local (derived data, e.g. the dedupe expiry index) and rebuilt when its source table is restored.
Values are JSON-able Python values, stored as JSON (the changelog records' format too); treat what
`get` returns as read-only.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

__all__ = ["DELETED", "ChangelogWrite", "PartitionStore", "StoreOptions", "TableSpec"]

log = logging.getLogger(__name__)

DELETED: Any = object()  # a version that deletes its key
META = "__meta__"


@dataclass(frozen=True)
class TableSpec:
    """A table: its column family name and its changelog topic (None: local, never restored)."""

    name: str
    changelog: str | None


@dataclass(frozen=True)
class StoreOptions:
    block_cache_bytes: int = 8 << 20
    write_buffer_bytes: int = 4 << 20


@dataclass(frozen=True)
class ChangelogWrite:
    """One changelog record: `value` None is a tombstone; `source` is "<input topic>@<offset>"."""

    topic: str
    key: bytes
    value: bytes | None
    source: bytes


class PartitionStore:
    """The state of one partition number, across every table of a worker."""

    def __init__(self, path: Path, partition: int, tables: Sequence[TableSpec],
                 options: StoreOptions = StoreOptions()) -> None:
        self.path = path
        self.partition = partition
        self.tables = {t.name: t for t in tables}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._options = _rocks_options(options)
        existing = set(Rdict.list_cf(str(path), self._options)) if (path / "CURRENT").exists() else {"default"}
        self._db = Rdict(str(path), self._options)
        self._cf: dict[str, Rdict] = {}
        self._handles: dict[str, Any] = {}
        for name in [*self.tables, META]:
            cf = self._db.get_column_family(name) if name in existing else \
                self._db.create_column_family(name, self._options)
            self._cf[name] = cf
            self._handles[name] = self._db.get_column_family_handle(name)
        # (table, key) -> [(topic, offset, value), ...] oldest first: writes not yet in a checkpoint
        self._versions: dict[tuple[str, bytes], list[tuple[str, int, Any]]] = {}
        # (table, key) -> (value, its JSON or None for a delete): in the changelog already, in the
        # database once the input offsets are committed
        self._flushed: dict[tuple[str, bytes], tuple[Any, bytes | None]] = {}
        self._flushed_positions: dict[str, int] = {}
        #: where the changelog records of facts go as they are written (set by the worker)
        self.on_fact: Callable[[ChangelogWrite, int], None] | None = None

    # -- reads and writes --------------------------------------------------------------------------------
    def get(self, table: str, key: bytes, default: Any = None) -> Any:
        versions = self._versions.get((table, key))
        if versions is not None:
            value = versions[-1][2]
            return default if value is DELETED else value
        flushed = self._flushed.get((table, key))
        if flushed is not None:
            return default if flushed[0] is DELETED else flushed[0]
        raw = self._cf[table].get(key)
        return default if raw is None else orjson.loads(raw)

    def put(self, table: str, key: bytes, value: Any, topic: str, offset: int) -> None:
        """Write `value` as the effect of input record (topic, offset)."""
        versions = self._versions.get((table, key))
        if versions is None:
            self._versions[(table, key)] = [(topic, offset, value)]
        elif versions[-1][0] == topic and versions[-1][1] == offset:
            versions[-1] = (topic, offset, value)  # the same event writing its key again
        else:
            versions.append((topic, offset, value))

    def delete(self, table: str, key: bytes, topic: str, offset: int) -> None:
        self.put(table, key, DELETED, topic, offset)

    def put_fact(self, table: str, key: bytes, value: Any) -> None:
        """Write a fact about the outside world (the sinks' "the platform accepted reply X"): true
        whatever happens to the input's offsets, so written through at once, to the database and as a
        changelog record without an input position (always applied at restore). It supersedes any
        write of the key still waiting for a checkpoint."""
        self._versions.pop((table, key), None)
        self._flushed.pop((table, key), None)
        raw = None if value is DELETED else _dumps(value)
        if raw is None:
            self._cf[table].delete(key)
        else:
            self._cf[table].put(key, raw)
        changelog = self.tables[table].changelog
        if changelog is not None and self.on_fact is not None:
            self.on_fact(ChangelogWrite(changelog, key, raw, b""), self.partition)

    def dirty(self) -> int:
        return len(self._versions)

    # -- checkpoint ------------------------------------------------------------------------------------
    def prepare(self, committable: Mapping[str, int]) -> list[ChangelogWrite]:
        """Move every write below the committable offsets (per input topic) to the flushed layer and
        return the changelog records to produce for them (one per key, its newest covered version)."""
        records: list[ChangelogWrite] = []
        if not self._versions:
            return records
        done: list[tuple[str, bytes]] = []
        for tk, versions in self._versions.items():
            n = 0
            for topic, offset, _ in versions:
                limit = committable.get(topic)
                if limit is None or offset >= limit:
                    break
                n += 1
            if n == 0:
                continue
            topic, offset, value = versions[n - 1]
            table, key = tk
            raw = None if value is DELETED else _dumps(value)
            self._flushed[tk] = (value, raw)
            changelog = self.tables[table].changelog
            if changelog is not None:
                records.append(ChangelogWrite(changelog, key, raw, f"{topic}@{offset}".encode()))
            if n == len(versions):
                done.append(tk)
            else:
                del versions[:n]
        for tk in done:
            del self._versions[tk]
        for topic, limit in committable.items():
            if limit > self._flushed_positions.get(topic, -1):
                self._flushed_positions[topic] = limit
        return records

    def persist(self, changelog_next: Mapping[str, int]) -> None:
        """The input offsets of everything prepared are committed: write it to the database, in one
        batch, with the positions it reflects (processed input offsets, changelog offsets reached)."""
        batch = WriteBatch(raw_mode=True)
        handles = self._handles
        for (table, key), (_, raw) in self._flushed.items():
            if raw is None:
                batch.delete(key, handles[table])
            else:
                batch.put(key, raw, handles[table])
        meta = handles[META]
        for topic, offset in self._flushed_positions.items():
            batch.put(b"processed:" + topic.encode(), str(offset).encode(), meta)
        for topic, offset in changelog_next.items():
            batch.put(b"changelog:" + topic.encode(), str(offset).encode(), meta)
        self._db.write(batch)
        self._flushed.clear()
        self._flushed_positions.clear()

    def discard_unpersisted(self) -> None:
        """Forget every write not in the database (the partition is going away: its next owner restores
        from the changelog and processes the uncommitted input again)."""
        self._versions.clear()
        self._flushed.clear()
        self._flushed_positions.clear()

    # -- positions ---------------------------------------------------------------------------------------
    def changelog_position(self, changelog_topic: str) -> int | None:
        raw = self._cf[META].get(b"changelog:" + changelog_topic.encode())
        return int(raw) if raw is not None else None

    def processed_position(self, topic: str) -> int | None:
        raw = self._cf[META].get(b"processed:" + topic.encode())
        return int(raw) if raw is not None else None

    # -- bulk access (restore, sweeps) ----------------------------------------------------------------
    def write_batch(self, items: Sequence[tuple[str, bytes, bytes | None]],
                    positions: Mapping[str, int] | None = None) -> None:
        """Write raw (table, key, JSON bytes | None) straight to the database, in one batch (restore)."""
        batch = WriteBatch(raw_mode=True)
        handles = self._handles
        for table, key, raw in items:
            if raw is None:
                batch.delete(key, handles[table])
            else:
                batch.put(key, raw, handles[table])
        for topic, offset in (positions or {}).items():
            batch.put(b"changelog:" + topic.encode(), str(offset).encode(), handles[META])
        self._db.write(batch)

    def scan(self, table: str, start: bytes = b"", limit: int | None = None) -> Iterator[tuple[bytes, Any]]:
        """(key, value) from the database in key order from `start` (what the last checkpoint wrote;
        pending writes are not seen)."""
        it = self._cf[table].iter()
        it.seek(start)
        n = 0
        while it.valid() and (limit is None or n < limit):
            yield it.key(), orjson.loads(it.value())
            it.next()
            n += 1

    def close(self) -> None:
        self.discard_unpersisted()
        self._cf.clear()
        self._handles.clear()
        self._db.close()

    def destroy(self) -> None:
        """Close and delete the database (a local copy that cannot be trusted is rebuilt from scratch)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _dumps(value: Any) -> bytes:
    # orjson: the same compact JSON as json.dumps(separators=(",", ":")) at a tenth of the cost (the
    # per-checkpoint encoding of every dirty key is on the worker's hot path).
    return orjson.dumps(value)


def _rocks_options(options: StoreOptions) -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.set_write_buffer_size(options.write_buffer_bytes)
    opts.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    # RocksDB's default block cache would be per database; a worker has one database per partition,
    # so keep it small and explicit.
    table.set_block_cache(Cache(options.block_cache_bytes))
    table.set_bloom_filter(10, True)
    opts.set_block_based_table_factory(table)
    return opts
