"""Which partition a chat lives on: the Java client's murmur2 partitioner, shared by every stage.

Ingest (confluent-kafka, `partitioner=murmur2_random`), Faust's aiokafka producer and the sinks all
place a keyed record on `(murmur2(key) & 0x7fffffff) % partitions`, so a chat's updates, messages,
replies and table rows share one partition number. Code that must know whether this worker owns a
chat (scheduled jobs) asks the same function.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

__all__ = ["partition_for"]


def partition_for(key: bytes, partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, not {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
