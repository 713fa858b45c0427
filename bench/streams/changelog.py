"""Fill the streams worker's dedupe changelog directly, in the format its state store writes it.

`dedupe`: key `platform:bot:update_id` (raw bytes), value JSON `{"p": partition, "o": offset, "t": ms}`
(the `Seen` entry; `PartitionStore` keeps values as JSON, as Faust's tables did). No headers: a record
without `botstream-source` is always applied at restore, whatever the group has committed. The dedupe
expiry index is local (no changelog): the worker rebuilds it from these records as it restores them.
Records go to partition `i % partitions`: a recovery measurement does not care which chat a key
belongs to, only how many records it reads. The topic comes from the topic catalog (`apply_catalog`).
"""

from __future__ import annotations

import time

from confluent_kafka import Producer

from botstream.core.kafka import producer_config
from botstream.core.settings import Settings
from botstream.schemas import topics


def changelog_topic(settings: Settings, table: str) -> str:
    """The changelog of one of the streams worker's tables, as the topic catalog names it."""
    return topics.changelog_topic(settings, "streams", table)


def dedupe_record(i: int, partitions: int, now_ms: int, keys: int) -> tuple[int, bytes, bytes]:
    """(partition, key, value) of the i-th of `keys` dedupe entries: distinct ids, first-seen times
    ascending and well inside the window."""
    partition = i % partitions
    key = b"telegram:echo:%d" % (700_000_000 + i)
    return partition, key, b'{"p":%d,"o":%d,"t":%d}' % (partition, i // partitions, now_ms - (keys - i))


def fill_dedupe(settings: Settings, bootstrap: str, keys: int) -> float:
    """Produce `keys` dedupe entries; returns the seconds it took."""
    p = Producer(producer_config(settings, bootstrap=bootstrap, client_id="botstream-bench", linger_ms=20, **{
        "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000, "log_level": 2}))
    topic = changelog_topic(settings, "dedupe")
    parts = settings.partitions
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for i in range(keys):
        partition, key, value = dedupe_record(i, parts, now, keys)
        _produce(p, topic, partition, key, value)
    if p.flush(120):
        raise RuntimeError("changelog records not acknowledged")
    return time.perf_counter() - started


def _produce(p: Producer, topic: str, partition: int, key: bytes, value: bytes) -> None:
    while True:
        try:
            p.produce(topic, key=key, value=value, partition=partition)
            return
        except BufferError:
            p.poll(0.05)
