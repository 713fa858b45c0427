"""KafkaSink's mechanics — poll thread, futures, deadlines, error mapping, probe — over a scripted
stand-in for confluent-kafka's Producer (the real one is exercised on a real broker in
tests/integration/ingest)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from botstream.core.settings import Settings
from botstream.ingest.producer import MAX_RECORD_BYTES, KafkaSink, ingest_producer_config
from botstream.ingest.sink import NotDurable, OutboundRecord

TOPIC = "t.updates"
Outcome = Callable[[OutboundRecord], KafkaError | None | str]  # error, None = ack, "hold" = never


@dataclass
class Partition:
    id: int
    leader: int = 1
    isrs: list[int] = field(default_factory=lambda: [1])


@dataclass
class TopicMeta:
    partitions: dict[int, Partition]
    error: KafkaError | None = None


@dataclass
class Metadata:
    topics: dict[str, TopicMeta]


class ScriptedProducer:
    """Answers like librdkafka: produce() queues, poll() serves delivery reports, per a script."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.outcome: Outcome = lambda record: None
        self.capacity = 1000
        self.reject: KafkaError | None = None
        self.metadata = Metadata({TOPIC: TopicMeta({0: Partition(0), 1: Partition(1)})})
        self.produced: list[OutboundRecord] = []
        self._queue: list[tuple[OutboundRecord, Callable[..., None]]] = []
        self._held: list[OutboundRecord] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any) -> None:
        if self.reject is not None:
            raise KafkaException(self.reject)
        with self._lock:
            if len(self._queue) + len(self._held) >= self.capacity:
                raise BufferError("Local: Queue full")
            record = OutboundRecord(topic, key, value, headers)
            self.produced.append(record)
            self._queue.append((record, on_delivery))
        self._wake.set()

    def poll(self, timeout: float) -> int:
        self._wake.wait(timeout)
        self._wake.clear()
        with self._lock:
            queue, self._queue = self._queue, []
        for record, callback in queue:
            result = self.outcome(record)
            if isinstance(result, str):  # "hold" (KafkaError only compares with codes)
                self._held.append(record)
            else:
                callback(result, None)
        return len(queue)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self._held)

    def __len__(self) -> int:
        return len(self._queue) + len(self._held)

    def list_topics(self, topic: str, timeout: float) -> Metadata:
        return self.metadata

    def free(self, n: int) -> None:
        """Let `n` held records go (as if the broker caught up)."""
        del self._held[:n]


@pytest.fixture
async def sink() -> AsyncIterator[KafkaSink]:
    kafka = KafkaSink({}, topic=TOPIC, ack_timeout_s=0.3, probe_interval_s=0.05, producer_factory=ScriptedProducer)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.close(timeout_s=0.1)


def producer_of(sink: KafkaSink) -> ScriptedProducer:
    return sink._producer  # type: ignore[no-any-return]


def records(n: int) -> list[OutboundRecord]:
    return [OutboundRecord(TOPIC, f"telegram:b:{i}".encode(), f"v{i}".encode(), [("correlation-id", b"c")])
            for i in range(n)]


async def test_returns_once_every_record_is_acknowledged(sink: KafkaSink) -> None:
    await sink.produce_all(records(3))
    assert [r.key for r in producer_of(sink).produced] == [b"telegram:b:0", b"telegram:b:1", b"telegram:b:2"]
    assert producer_of(sink).produced[0].headers == [("correlation-id", b"c")]


async def test_one_failed_record_fails_the_whole_request(sink: KafkaSink) -> None:
    producer_of(sink).outcome = lambda r: KafkaError(KafkaError._MSG_TIMED_OUT) if r.key.endswith(b"1") else None
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(3))
    assert (caught.value.status, caught.value.reason) == (503, "ack_timeout")


async def test_no_ack_within_the_deadline_is_not_durable(sink: KafkaSink) -> None:
    producer_of(sink).outcome = lambda r: "hold"
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(1))
    assert caught.value.reason == "ack_timeout"


async def test_a_full_queue_waits_for_room_until_the_deadline(sink: KafkaSink) -> None:
    producer = producer_of(sink)
    producer.capacity, producer.outcome = 1, (lambda r: "hold")
    with pytest.raises(NotDurable):
        await sink.produce_all(records(1))  # occupies the only slot
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(1))
    assert caught.value.reason == "queue_full"


async def test_a_full_queue_that_drains_in_time_succeeds(sink: KafkaSink) -> None:
    import asyncio

    producer = producer_of(sink)
    producer.capacity, producer.outcome = 1, (lambda r: "hold")
    with pytest.raises(NotDurable):
        await sink.produce_all(records(1))
    producer.outcome = lambda r: None
    asyncio.get_running_loop().call_later(0.05, producer.free, 1)
    await sink.produce_all(records(1))


async def test_a_record_too_large_is_retriable_and_leaves_the_producer_ready(sink: KafkaSink) -> None:
    assert sink.probe_once()
    producer_of(sink).reject = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)  # refused by produce() itself
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(1))
    assert (caught.value.status, caught.value.reason) == (503, "record_too_large")
    producer_of(sink).reject = None
    producer_of(sink).outcome = lambda r: KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)  # refused by the broker
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(1))
    assert caught.value.reason == "record_too_large"
    assert sink.status().ready  # one oversized record says nothing about the broker's health


async def test_missing_topic_is_not_ready_and_not_durable(sink: KafkaSink) -> None:
    producer = producer_of(sink)
    producer.metadata = Metadata({TOPIC: TopicMeta({}, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))})
    assert sink.probe_once() is False
    assert "does not exist" in sink.status().reason
    producer.outcome = lambda r: KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(1))
    assert caught.value.reason == "topic_unavailable"


async def test_probe_requires_leaders_and_in_sync_replicas(sink: KafkaSink) -> None:
    producer = producer_of(sink)
    assert sink.probe_once() and sink.status().ready
    producer.metadata = Metadata({TOPIC: TopicMeta({0: Partition(0), 1: Partition(1, leader=-1)})})
    assert sink.probe_once() is False
    assert not sink.status().ready and "[1]" in sink.status().reason
    sink.min_insync_replicas = 2
    producer.metadata = Metadata({TOPIC: TopicMeta({0: Partition(0, isrs=[1, 2]), 1: Partition(1, isrs=[1])})})
    assert sink.probe_once() is False


async def test_fatal_error_fails_liveness_and_every_later_request(sink: KafkaSink) -> None:
    sink._on_error(KafkaError(KafkaError._FENCED, "producer fenced", fatal=True))
    assert not sink.status().alive
    with pytest.raises(NotDurable) as caught:
        await sink.produce_all(records(1))
    assert caught.value.reason == "producer_fatal"


async def test_all_brokers_down_makes_it_unready_until_the_next_success(sink: KafkaSink) -> None:
    assert sink.probe_once()
    sink._on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert sink.status().reason == "all brokers down"
    await sink.produce_all(records(1))
    assert sink.status().ready


async def test_not_started_or_closed_sink_is_not_durable() -> None:
    kafka = KafkaSink({}, topic=TOPIC, ack_timeout_s=0.3, producer_factory=ScriptedProducer)
    with pytest.raises(NotDurable) as caught:
        await kafka.produce_all(records(1))
    assert caught.value.reason == "not_started"
    await kafka.start()
    await kafka.close(timeout_s=0.1)
    with pytest.raises(NotDurable):
        await kafka.produce_all(records(1))


def test_producer_config_carries_the_guarantees_and_librdkafka_accepts_it() -> None:
    config = ingest_producer_config(Settings(ack_timeout_s=2.0), bootstrap="127.0.0.1:1")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["partitioner"] == "murmur2_random"
    assert config["message.timeout.ms"] == 2000
    assert config["allow.auto.create.topics"] is False
    assert config["message.max.bytes"] == MAX_RECORD_BYTES and config["client.id"] == "botstream-ingest"
    Producer({**{k: v for k, v in config.items() if k != "bootstrap.servers"}})  # raises on a bad key or value
