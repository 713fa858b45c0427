"""Fetch pacing on a real aiokafka consumer against the real broker: while records flow each fetch
gathers a batch for the wait, so there are at most elapsed/wait fetches that bring records; once a fetch
comes back empty the consumer long-polls again. The workers' consumers are paced the same way
(`PacedConsumerThread`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer

from botstream.core.faust_app import FetchPacing, pace_fetcher
from botstream.core.kafka import producer_config
from tests.pipeline import client_settings

pytestmark = pytest.mark.kafka

WAIT_MS = 100
RECORDS = 300
SPREAD_S = 1.5  # the records are produced evenly over this long: a record every 5 ms


def test_flowing_records_come_in_batches_and_an_idle_consumer_long_polls(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("paced", partitions=2)
    pacing = FetchPacing(batch_wait_ms=WAIT_MS)
    assert pacing.limits(flowing=True) == (pacing.batch_min_bytes, WAIT_MS)
    assert pacing.limits(flowing=False) == (1, pacing.idle_wait_ms)
    assert pacing.limits(flowing=False, buffered=True) == (pacing.batch_min_bytes, WAIT_MS)  # no long poll
    assert FetchPacing(batch_wait_ms=0).limits(flowing=True) == (1, pacing.idle_wait_ms)  # off: one-byte fetches

    async def run() -> tuple[int, int, float, tuple[int, int]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False,
                                    fetch_max_wait_ms=pacing.idle_wait_ms)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            await consumer.seek_to_beginning()
            fetcher: Any = consumer._fetcher
            fetches_with_records = 0
            inner = fetcher._proc_fetch_request

            async def counted(*args: Any) -> bool:
                nonlocal fetches_with_records
                had = bool(await inner(*args))
                fetches_with_records += had
                return had

            fetcher._proc_fetch_request = counted
            pace_fetcher(fetcher, pacing)

            producer = Producer({**producer_config(client_settings(kafka_bootstrap)), "linger.ms": 0})
            loop = asyncio.get_running_loop()

            def produce() -> None:
                for i in range(RECORDS):
                    producer.produce(topic, value=b"x" * 100, partition=i % 2)
                    producer.poll(0)
                    time.sleep(SPREAD_S / RECORDS)
                assert producer.flush(30) == 0

            started = time.monotonic()
            producing = loop.run_in_executor(None, produce)
            got = 0
            while got < RECORDS and time.monotonic() - started < 60:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got += len(records)
            elapsed = time.monotonic() - started
            await producing
            # the stream has ended: the next fetch comes back empty and the consumer is idle again
            deadline = time.monotonic() + 10
            while (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) != pacing.limits(flowing=False):
                assert time.monotonic() < deadline, "the fetcher stayed in batch mode after the records stopped"
                await asyncio.sleep(0.05)
            return got, fetches_with_records, elapsed, (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    got, fetches, elapsed, idle = asyncio.run(run())
    assert got == RECORDS
    assert idle == (1, pacing.idle_wait_ms)
    # Each fetch after the first that brought records waited WAIT_MS for its batch (the broker holds it
    # until 1 MiB, far more than arrives); one-byte fetches would have needed one per record or two.
    assert fetches <= elapsed * 1000 / WAIT_MS + 3, (fetches, elapsed)
    assert fetches < RECORDS / 5, fetches


def test_no_long_poll_holds_back_partitions_whose_records_are_still_being_taken(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    """A worker consumes a busy topic and a quiet one (streams: `updates` and `deliveries`; sinks:
    `replies` and the retry topics). While it works through a big batch of the busy partition, aiokafka
    fetches only the quiet partition; such a fetch must not be a long poll, or the busy partition could
    not be fetched for up to `idle_wait_ms` after the batch is done (it was a standing ~1.2 s delay in
    the streams bench)."""
    busy, quiet = make_topic("paced-busy", partitions=1), make_topic("paced-quiet", partitions=1)
    pacing = FetchPacing(batch_wait_ms=20)
    burst, take, pause_s = 2000, 50, 0.01  # the burst takes >= 0.4 s to work through: > aiokafka's 0.1 s backoff

    async def run() -> tuple[list[tuple[int, list[str], bool]], float]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False,
                                    fetch_max_wait_ms=pacing.idle_wait_ms)
        await consumer.start()
        try:
            busy_tp, quiet_tp = TopicPartition(busy, 0), TopicPartition(quiet, 0)
            consumer.assign([busy_tp, quiet_tp])
            await consumer.seek_to_beginning()
            fetcher: Any = consumer._fetcher
            build = fetcher._get_actions_per_node
            sent: list[tuple[int, list[str], bool]] = []  # (max wait, topics, records held when built)

            def recorded(assignment: Any) -> Any:
                held = bool(fetcher._records)
                actions = build(assignment)
                sent.extend((req._max_wait_ms, [t for t, _ in req.topics], held) for _, req in actions[0])
                return actions

            fetcher._get_actions_per_node = recorded
            pace_fetcher(fetcher, pacing)  # wraps the recording builder: the values it sets are in `sent`

            producer = Producer(producer_config(client_settings(kafka_bootstrap)))
            for _ in range(burst):
                producer.produce(busy, value=b"x" * 100, partition=0)
            assert producer.flush(30) == 0
            got = 0
            while got < burst:
                batch = await consumer.getmany(busy_tp, timeout_ms=2000, max_records=take)
                got += sum(len(v) for v in batch.values())
                await asyncio.sleep(pause_s)  # the worker's own work on what it took
            started = time.monotonic()
            producer.produce(busy, value=b"probe", partition=0)
            producer.poll(0)
            while not (await consumer.getmany(busy_tp, timeout_ms=3000)):
                assert time.monotonic() - started < 5, "the probe never came"
            return sent, time.monotonic() - started
        finally:
            await consumer.stop()

    sent, probe_s = asyncio.run(run())
    quiet_only = [(wait, held) for wait, topics, held in sent if topics == [quiet]]
    assert quiet_only, "the quiet partition was never fetched alone: the scenario did not happen"
    held_waits = [wait for wait, held in quiet_only if held]
    assert held_waits and max(held_waits) <= pacing.batch_wait_ms, sent
    assert probe_s < 0.5, probe_s
