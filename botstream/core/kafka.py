"""The one Kafka client layer: where every confluent-kafka producer, consumer and admin client gets its
configuration, and where the cluster's address is resolved.

Everything that talks to Kafka outside Faust (ingest's producer, the workers' output producer and
changelog restore, admin, lag, replay, tail, the DLQ tools, the tests and benches) builds its client
from these functions, so the settings a guarantee rests on are written once:

- **bootstrap**: `KAFKA_BOOTSTRAP_SERVERS`, else the embedded broker `botstream kafka up` started
  (its state file under the data dir), else a `ConfigError` that says how to get one;
- **co-partitioning**: `partitioner=murmur2_random` is the Java client's murmur2 for keyed records,
  which is also what Faust's aiokafka uses; librdkafka's default (crc32) would put a chat on another
  partition number than its state;
- **durability**: idempotent producers with acks=all (retries cannot duplicate or reorder);
- **security**: `security_config` is merged into every client (and into Faust's, through
  `botstream.core.faust_app`), so TLS and SASL are configured in one place.

`read_to_end` is the one way to read partitions from an offset up to their end as it was when the
read began (replay, DLQ tools, changelog restore).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from botstream.core.errors import ConfigError
from botstream.core.processes import pid_alive
from botstream.core.settings import Settings

__all__ = [
    "PARTITIONER",
    "admin_config",
    "bootstrap_servers",
    "consumer_config",
    "embedded_bootstrap",
    "header_map",
    "producer_config",
    "read_to_end",
    "security_config",
]

PARTITIONER = "murmur2_random"
COMPRESSION = "lz4"
EMBEDDED_STATE = ("kafka", "cluster.json")  # under settings.data_dir, written by the embedded launcher


def embedded_bootstrap(settings: Settings) -> str | None:
    """The address of the embedded broker `botstream kafka up` runs for this data dir, if it is alive."""
    state_file = settings.data_dir.joinpath(*EMBEDDED_STATE)
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    pids = [int(p) for p in state.get("pids", [])]
    if not pids or not all(pid_alive(p) for p in pids):
        return None
    bootstrap = state.get("bootstrap")
    return str(bootstrap) if bootstrap else None


def bootstrap_servers(settings: Settings) -> str:
    """The cluster to talk to: the configured one, else the running embedded broker."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    embedded = embedded_bootstrap(settings)
    if embedded is None:
        raise ConfigError("no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS or start one with `botstream kafka up`")
    return embedded


def security_config(settings: Settings) -> dict[str, Any]:
    """TLS / SASL settings shared by every client. PLAINTEXT needs none."""
    return {}


def _base(settings: Settings, bootstrap: str | None) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap or bootstrap_servers(settings), **security_config(settings)}


def producer_config(settings: Settings, *, bootstrap: str | None = None, client_id: str = "botstream",
                    linger_ms: int = 5, **overrides: Any) -> dict[str, Any]:
    """A durable producer: idempotent, acks=all, chats co-partitioned, lz4."""
    return {
        **_base(settings, bootstrap),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": PARTITIONER,
        "compression.type": COMPRESSION,
        "linger.ms": linger_ms,
        # A missing topic is an error, never a 1-partition topic made by the broker's auto-create.
        "allow.auto.create.topics": False,
        "socket.nagle.disable": True,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
        "log.connection.close": False,
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str | None = None, *, bootstrap: str | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only what it is told to; `group_id` None means a throwaway group."""
    return {
        **_base(settings, bootstrap),
        "group.id": group_id or f"botstream-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "allow.auto.create.topics": False,
        "log.connection.close": False,
        **overrides,
    }


def admin_config(settings: Settings, *, bootstrap: str | None = None, timeout_s: float = 10.0,
                 **overrides: Any) -> dict[str, Any]:
    return {**_base(settings, bootstrap), "socket.timeout.ms": int(timeout_s * 1000), **overrides}


def read_to_end(consumer: Consumer, starts: Iterable[TopicPartition], *, timeout_s: float = 60.0,
                batch: int = 1000) -> Iterator[Message]:
    """Yield the records of `starts` (topic, partition, start offset) up to each partition's end as it
    was when the read began, in offset order per partition. Partitions with nothing to read are skipped.
    Raises TimeoutError when the end is not reached within `timeout_s`."""
    ends: dict[tuple[str, int], int] = {}
    assign: list[TopicPartition] = []
    for tp in starts:
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s)
        start = tp.offset
        if start == OFFSET_BEGINNING or start < low:
            start = low
        if start >= high:
            continue
        ends[(tp.topic, tp.partition)] = high
        assign.append(TopicPartition(tp.topic, tp.partition, start))
    if not assign:
        return
    consumer.assign(assign)
    deadline = time.monotonic() + timeout_s
    try:
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {sorted(ends)} to their end took longer than {timeout_s:g}s")
            for msg in consumer.consume(batch, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise error_to_exception(error)
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                assert topic is not None and partition is not None and offset is not None
                end = ends.get((topic, partition))
                if end is None or offset >= end:
                    continue
                yield msg
                if offset + 1 >= end:
                    del ends[(topic, partition)]
    finally:
        consumer.unassign()


def header_map(headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None) -> dict[str, bytes]:
    """A record's headers as {lower-case name: bytes}; the last value of a repeated name wins."""
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, bytes] = {}
    for name, value in items:
        if value is None:
            continue
        out[str(name).lower()] = value.encode() if isinstance(value, str) else bytes(value)
    return out


def error_to_exception(error: KafkaError) -> Exception:
    from confluent_kafka import KafkaException

    return KafkaException(error)


def topic_partitions(client: Any, topic: str, *, timeout_s: float = 15.0) -> list[int]:
    """The partition ids of `topic`, sorted; [] when the topic does not exist. `client` is any
    confluent-kafka client (Consumer, Producer, AdminClient): they all answer `list_topics`."""
    meta = client.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return []
    return sorted(meta.partitions)


__all__ += ["topic_partitions"]


def client_logger_config() -> dict[str, Any]:
    """`{"logger": ...}`, to merge into any confluent-kafka client's configuration: librdkafka's log
    lines then go through Python logging (the process's JSON formatter, with `kafka_facility` and
    `kafka_client` fields; see botstream.core.logs) instead of raw to stderr. confluent-kafka serves
    them from the client's own `poll()` / `flush()` / `consume()`, never from librdkafka's threads; an
    AdminClient that is never polled drops them."""
    import logging

    from botstream.core.logs import LIBRDKAFKA_LOGGER

    return {"logger": logging.getLogger(LIBRDKAFKA_LOGGER)}


__all__ += ["client_logger_config"]
