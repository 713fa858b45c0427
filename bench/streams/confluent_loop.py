"""The client's ceiling: confluent-kafka consume → produce in batches, no framework, no work per record.

Batch consume (confluent-kafka consumes one message at a time several times slower), produce each record's
key/value/headers unchanged with the project's producer settings, serve delivery reports with
`poll(0)` once per batch, commit asynchronously once per batch.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer

from botstream.core.kafka import consumer_config
from tests.pipeline import client_settings, producer

BATCH = 1000


@dataclass(frozen=True)
class LoopResult:
    records: int
    wall_s: float
    cpu_s: float  # this process's CPU (all threads, librdkafka's included) during the loop


def consume_produce(bootstrap: str, source: str, sink: str, expected: int, timeout: float = 120.0) -> LoopResult:
    consumer = Consumer(consumer_config(client_settings(bootstrap), f"bench-loop-{uuid.uuid4().hex[:8]}",
                                        log_level=2))
    p = producer(bootstrap)
    consumer.subscribe([source])
    done = 0
    started, cpu0 = time.perf_counter(), time.process_time()
    deadline = time.monotonic() + timeout
    try:
        while done < expected and time.monotonic() < deadline:
            batch = consumer.consume(BATCH, timeout=0.5)
            for msg in batch:
                if msg.error():
                    continue
                while True:
                    try:
                        p.produce(sink, key=msg.key(), value=msg.value(), headers=msg.headers())
                        break
                    except BufferError:
                        p.poll(0.05)
                done += 1
            p.poll(0)
            if batch:
                consumer.commit(asynchronous=True)
        p.flush(60)
        return LoopResult(done, time.perf_counter() - started, time.process_time() - cpu0)
    finally:
        consumer.close()
