"""The workers' output producer: confluent-kafka, nothing awaited per record, flushed before a commit.

A worker produces what it derives from its input (replies, events, delivery results, changelog
records) as it goes, and the broker's acknowledgements are checked once per checkpoint: `flush()`
returns only when every record produced so far is acknowledged (acks=all, idempotent), and raises
`DeliveryFailed` when any was not. The worker commits its input offsets only after that, so a
record that was never written can never be skipped: a failed flush stops the commit and the worker,
and the input is processed again by whoever owns it next.

Success reports cost nothing here (`delivery.report.only.error`): librdkafka reports failures only.
`track_offsets=True` (the changelog producer) asks for every report instead, to learn the offset
each changelog partition reached; that is what a worker's local state records as "restored up to".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["DeliveryFailed", "OutputProducer"]

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
FULL_QUEUE_WAIT_S = 0.01


class DeliveryFailed(Exception):
    """A record was not acknowledged: nothing since the last checkpoint may be committed."""


class OutputProducer:
    def __init__(self, config: Mapping[str, Any], *, track_offsets: bool = False) -> None:
        self._failures: list[str] = []
        self._fatal: str | None = None
        self._lock = threading.Lock()
        self.track_offsets = track_offsets
        #: (topic, partition) -> offset after the last acknowledged record (track_offsets only)
        self.next_offsets: dict[tuple[str, int], int] = {}
        conf = dict(config)
        conf["error_cb"] = self._on_error
        conf["on_delivery"] = self._on_delivery
        conf["delivery.report.only.error"] = not track_offsets
        self._producer = Producer(conf)

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None, *,
                headers: Headers = None, partition: int = -1) -> None:
        """Hand a record to librdkafka (in order per partition); never waits for the broker. When the
        local queue is full, serves delivery reports until there is room (backpressure)."""
        produce = self._producer.produce
        while True:
            try:
                produce(topic, value, key, partition, headers=headers)  # type: ignore[arg-type]
                return
            except BufferError:
                self._producer.poll(FULL_QUEUE_WAIT_S)

    def poll(self) -> None:
        """Serve pending delivery reports (cheap; call once per batch)."""
        self._producer.poll(0)

    def __len__(self) -> int:
        return len(self._producer)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every record produced so far is acknowledged; `DeliveryFailed` if any was not
        (or the producer hit a fatal error). Blocking: call it from a thread when on an event loop."""
        remaining = self._producer.flush(timeout_s)
        with self._lock:
            failures, self._failures = self._failures, []
            fatal = self._fatal
        if fatal is not None:
            raise DeliveryFailed(f"fatal producer error: {fatal}")
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise DeliveryFailed(f"{failures[0]}{more}")
        if remaining:
            raise DeliveryFailed(f"{remaining} record(s) not acknowledged within {timeout_s:g}s")

    def close(self, timeout_s: float = 5.0, *, purge: bool = False) -> None:
        """Release the client: send what is queued (within `timeout_s`), or drop it (`purge`: after a
        failure or a crash test, when the input is redone anyway). The object is unusable afterwards."""
        producer = self._producer
        if purge:
            producer.purge()
        producer.flush(0 if purge else timeout_s)
        del self._producer

    # -- librdkafka callbacks (served by poll / flush, on the calling thread) --------------------------
    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            with self._lock:
                self._failures.append(f"{message.topic()}[{message.partition()}]: {error.str()}")
            return
        if self.track_offsets:
            offset = message.offset()
            if offset is not None and offset >= 0:
                key = (message.topic() or "", message.partition() or 0)
                if offset + 1 > self.next_offsets.get(key, 0):
                    self.next_offsets[key] = offset + 1

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            with self._lock:
                self._fatal = error.str()
            log.error("fatal producer error: %s", error.str())
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            log.warning("producer: all brokers down (%s)", error.str())
        else:
            log.debug("producer: %s", error.str())
