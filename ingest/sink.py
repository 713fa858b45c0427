"""The one boundary between the HTTP shell and Kafka: a `RecordSink` takes the records of one request
and returns only once every one of them is durable.

The app depends on this protocol, not on confluent-kafka, so its tests run with an in-memory sink
(`MemorySink` in the tests) and the real `botstream.ingest.producer.KafkaSink` is exercised on a real broker.

The one error, an `IngestError` so the shell answers it like any other:

    IngestError
    └── NotDurable   503  a record was not acknowledged in time: broker down, local queue full, ack
                          timeout, delivery failed, or refused as too large by the topic's
                          max.message.bytes. Always retriable: the platform redelivers (dedupe makes
                          a redelivery harmless), and even "too large" is our configuration, not the
                          sender's fault — answering 4xx would make the platform drop a valid update
                          that an operator can still rescue by raising the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from botstream.ingest.errors import IngestError


class NotDurable(IngestError):
    """Some record of the request is not acknowledged by the broker; answer 503 + Retry-After."""

    status = 503
    retriable = True


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """One Kafka record, already encoded: the sink only moves bytes."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class SinkStatus:
    """What /healthz (alive) and /readyz (ready) answer; `reason` says why not, for operators."""

    alive: bool
    ready: bool
    reason: str = ""


class RecordSink(Protocol):
    async def produce_all(self, records: Sequence[OutboundRecord]) -> None:
        """Return once every record is acknowledged (acks=all); else raise NotDurable."""
        ...

    def status(self) -> SinkStatus: ...
