"""Fill the dedupe tables' changelogs directly, in the format the streams worker writes them.

`dedupe`: key `platform:bot:update_id` (raw bytes), value JSON `{"p": partition, "o": offset, "t": ms}`
(faust serialises a table without `value_type` as JSON). `dedupe-index`: key `<13-digit ms>|<dedupe key>`,
value empty bytes (faust writes `bytes` values raw). Records go to partition `i % partitions`: a
recovery measurement does not care which chat a key belongs to, only how many records it reads.
The topics themselves come from the topic catalog (`apply_catalog` declares every table changelog with
the worker's own configuration), so faust finds them declared as it would have declared them.
"""

from __future__ import annotations

import time

from confluent_kafka import Producer

from botstream.core.kafka import producer_config
from botstream.core.settings import Settings
from botstream.schemas import topics
from botstream.streams.dedupe import expiry_index_key

TABLES = ("dedupe", "dedupe-index")


def changelog_topic(settings: Settings, table: str) -> str:
    """The changelog of one of the streams worker's tables, as the topic catalog names it."""
    return topics.changelog_topic(settings, "streams", table)


def fill_dedupe(settings: Settings, bootstrap: str, keys: int, *, with_index: bool) -> float:
    """Produce `keys` dedupe entries (and their index entries); returns the seconds it took."""
    p = Producer(producer_config(settings, bootstrap=bootstrap, client_id="botstream-bench", linger_ms=20, **{
        "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000, "log_level": 2}))
    dedupe, index = changelog_topic(settings, "dedupe"), changelog_topic(settings, "dedupe-index")
    parts = settings.partitions
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for i in range(keys):
        partition = i % parts
        key = b"telegram:echo:%d" % (700_000_000 + i)
        seen_ms = now - (keys - i)  # distinct, ascending, well inside the window
        _produce(p, dedupe, partition, key, b'{"p": %d, "o": %d, "t": %d}' % (partition, i // parts, seen_ms))
        if with_index:
            _produce(p, index, partition, expiry_index_key(seen_ms, key), b"")
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
