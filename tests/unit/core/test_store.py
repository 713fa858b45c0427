"""PartitionStore: reads see writes, a checkpoint covers only committable writes, one record per key."""

from __future__ import annotations

from pathlib import Path

import pytest

from botstream.core.state.restore import parse_source, should_apply
from botstream.core.state.store import ChangelogWrite, PartitionStore, TableSpec

TABLES = [TableSpec("state", "state-changelog"), TableSpec("index", None), TableSpec("facts", "facts-changelog")]


@pytest.fixture
def store(tmp_path: Path) -> PartitionStore:
    s = PartitionStore(tmp_path / "p3", 3, TABLES)
    yield s
    s.close()


def test_reads_see_the_newest_write_then_the_database(store: PartitionStore) -> None:
    assert store.get("state", b"k") is None and store.get("state", b"k", 0) == 0
    store.put("state", b"k", {"n": 1}, "in", 10)
    store.put("state", b"k", {"n": 2}, "in", 11)
    assert store.get("state", b"k") == {"n": 2}
    store.delete("state", b"k", "in", 12)
    assert store.get("state", b"k") is None


def test_ten_writes_of_one_key_make_one_changelog_record(store: PartitionStore) -> None:
    for offset in range(10):
        store.put("state", b"chat", {"turns": offset + 1}, "in", offset)
    store.put("index", b"local", 0, "in", 3)
    records = store.prepare({"in": 10})
    assert records == [ChangelogWrite("state-changelog", b"chat", b'{"turns":10}', b"in@9")]  # local: none
    store.persist({"state-changelog": 1})
    assert store.get("state", b"chat") == {"turns": 10} and store.get("index", b"local") == 0
    assert store.changelog_position("state-changelog") == 1 and store.processed_position("in") == 10


def test_writes_past_the_committable_offset_wait_for_a_later_checkpoint(store: PartitionStore) -> None:
    store.put("state", b"a", {"v": 1}, "in", 5)    # done, committable
    store.put("state", b"a", {"v": 2}, "in", 9)    # this chat went on past a slow chat at offset 7
    store.put("state", b"b", {"v": 1}, "in", 8)
    records = store.prepare({"in": 7})              # offset 7 is still running
    assert [(r.key, r.value) for r in records] == [(b"a", b'{"v":1}')]
    assert store.get("state", b"a") == {"v": 2}     # the newest write still reads
    store.persist({})
    assert store.dirty() == 2
    later = store.prepare({"in": 10})
    assert sorted((r.key, r.value, r.source) for r in later) == [(b"a", b'{"v":2}', b"in@9"),
                                                                   (b"b", b'{"v":1}', b"in@8")]


def test_versions_of_two_inputs_are_covered_per_input(store: PartitionStore) -> None:
    store.put("state", b"chat", {"v": 1}, "updates", 4)
    store.put("state", b"chat", {"v": 2}, "deliveries", 20)
    assert [r.source for r in store.prepare({"updates": 5})] == [b"updates@4"]  # deliveries@20 not covered
    assert [r.source for r in store.prepare({"updates": 5, "deliveries": 21})] == [b"deliveries@20"]


def test_nothing_unpersisted_survives_a_close(tmp_path: Path) -> None:
    s = PartitionStore(tmp_path / "p0", 0, TABLES)
    s.put("state", b"k", 1, "in", 0)
    s.prepare({"in": 1})  # flushed, never committed
    s.close()
    s = PartitionStore(tmp_path / "p0", 0, TABLES)
    assert s.get("state", b"k") is None
    s.close()


def test_facts_are_written_through_at_once(tmp_path: Path) -> None:
    s = PartitionStore(tmp_path / "p0", 0, TABLES)
    written: list[tuple[ChangelogWrite, int]] = []
    s.on_fact = lambda w, p: written.append((w, p))
    s.put("facts", b"reply-1", {"s": "pending"}, "replies", 98)  # a checkpointed write, superseded
    s.put_fact("facts", b"reply-1", {"s": "delivered"})
    assert written == [(ChangelogWrite("facts-changelog", b"reply-1", b'{"s":"delivered"}', b""), 0)]
    assert s.prepare({"replies": 1}) == []  # not part of checkpoints
    s.close()  # no persist: a crash right after the send
    s = PartitionStore(tmp_path / "p0", 0, TABLES)
    assert s.get("facts", b"reply-1") == {"s": "delivered"}
    s.close()


def test_scan_reads_the_database_in_key_order(store: PartitionStore) -> None:
    for key in (b"b", b"a", b"c"):
        store.put("index", key, 0, "in", 1)
    store.prepare({"in": 2})
    store.persist({})
    assert [k for k, _ in store.scan("index")] == [b"a", b"b", b"c"]
    assert [k for k, _ in store.scan("index", b"b", limit=1)] == [b"b"]


@pytest.mark.parametrize("raw, committed, applies", [
    (None, {"in": None}, True),            # no header: replay tool, older versions
    (b"in@4", {"in": 5}, True),
    (b"in@5", {"in": 5}, False),           # its event will be processed again
    (b"in@0", {"in": None}, False),        # nothing committed yet
    (b"garbage", {"in": 0}, True),
])
def test_restore_skips_records_past_the_committed_offset(raw: bytes | None, committed: dict[str, int | None],
                                                          applies: bool) -> None:
    assert should_apply(parse_source(raw), committed) is applies
