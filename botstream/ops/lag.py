"""Consumer lag of botstream's consumer groups: for operators (`botstream lag`) and for Prometheus.

Lag is what the pipeline owes: records written to a partition that its consumer group has not
committed yet (`end offset − committed offset`). It is the one number that says whether streams and
sinks keep up, what the lag alert and the KEDA autoscalers act on, and it cannot be measured from
inside a worker (a worker that is stuck or gone reports nothing), so it is read from the broker with
confluent-kafka's AdminClient, from outside the workers.

The groups are the Faust app ids of the two workers, `<prefix>-streams` and `<prefix>-sinks`, plus
any group the caller names. Only partitions a group has committed are reported: before the first
commit the group's position is not known to the broker (the consumer starts at `earliest`).

`ConsumerLagCollector` exports it to Prometheus. A scrape must never fail or hang because Kafka is
slow, so the collector asks the broker at most once per `cache_s`, bounds every request by a
timeout, and turns failures into `botstream_consumer_lag_errors_total` instead of an exception; the
last good values are served until they are `stale_s` old, then dropped (a lag series that silently
froze would hide the very backlog it is there to show).

It also exports `botstream_dlq_records{topic}`: records retained in the DLQ topic. The sinks'
`botstream_sinks_dlq_records_total` counter cannot say this (it resets with the worker and misses a
label set's first increment in `increase()`), and the DLQ-growing alert needs a number that only
goes up when a record lands there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from botstream.core.errors import BotstreamError
from botstream.core.kafka import admin_config, client_logger_config
from botstream.core.settings import Settings

__all__ = [
    "DLQ_METRIC",
    "ERRORS_METRIC",
    "LAG_METRIC",
    "ConsumerLagCollector",
    "LagError",
    "LagSnapshot",
    "PartitionLag",
    "botstream_groups",
    "compute_lag",
    "consumer_lag",
    "dlq_records",
    "read_snapshot",
]

log = logging.getLogger(__name__)

LAG_METRIC = "botstream_consumer_lag"
ERRORS_METRIC = "botstream_consumer_lag_errors"  # a counter: exposed as botstream_consumer_lag_errors_total
DLQ_METRIC = "botstream_dlq_records"
DEFAULT_TIMEOUT_S = 5.0  # below Prometheus' default 10 s scrape timeout, with room for two round trips


class LagError(BotstreamError):
    """The broker did not tell us the offsets (unreachable, timed out, group or topic refused)."""


@dataclass(frozen=True, order=True)
class PartitionLag:
    """One partition of one group: where the group is, where the log ends, and the gap."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        # A committed offset past the end happens briefly after a topic was truncated by retention
        # of a compacted log; it is no debt.
        return max(0, self.end - self.committed)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "topic": self.topic, "partition": self.partition,
                "committed": self.committed, "end": self.end, "lag": self.lag}


@dataclass(frozen=True)
class LagSnapshot:
    """What one look at the broker found: partition lags, and the DLQ topic's size when asked for."""

    partitions: list[PartitionLag] = field(default_factory=list)
    dlq: dict[str, int] = field(default_factory=dict)  # topic -> records retained


def botstream_groups(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """The workers' consumer groups (their Faust app ids), then `extra`, without duplicates."""
    groups = [f"{settings.topic_prefix}-streams", f"{settings.topic_prefix}-sinks", *extra]
    return list(dict.fromkeys(g for g in groups if g))


def compute_lag(group: str, committed: Mapping[tuple[str, int], int],
                ends: Mapping[tuple[str, int], int]) -> list[PartitionLag]:
    """Pair a group's committed offsets with the partitions' end offsets (pure: no broker).

    A partition whose end offset is unknown (topic deleted meanwhile) is left out rather than
    reported with a made-up lag.
    """
    return sorted(PartitionLag(group, topic, partition, offset, ends[(topic, partition)])
                  for (topic, partition), offset in committed.items() if (topic, partition) in ends)


def committed_offsets(admin: AdminClient, group: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[tuple[str, int], int]:
    """The group's committed offsets; partitions it never committed are absent."""
    # The API takes one group per request (confluent-kafka 2.x).
    request = [ConsumerGroupTopicPartitions(group)]
    try:
        result = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group].result(timeout + 1)
    except KafkaException as exc:
        raise LagError(f"committed offsets of group {group!r}: {_kafka_reason(exc)}") from None
    except TimeoutError:
        raise LagError(f"committed offsets of group {group!r}: no answer within {timeout:g}s") from None
    out: dict[tuple[str, int], int] = {}
    for tp in result.topic_partitions or []:
        if tp.error is not None:
            raise LagError(f"committed offset of {group!r} on {tp.topic}[{tp.partition}]: {tp.error.str()}")
        if tp.offset >= 0:  # OFFSET_INVALID (-1001): nothing committed
            out[(tp.topic, tp.partition)] = tp.offset
    return out


def log_offsets(admin: AdminClient, partitions: Iterable[tuple[str, int]], spec: OffsetSpec,
                timeout: float = DEFAULT_TIMEOUT_S) -> dict[tuple[str, int], int]:
    """Offsets of `spec` (latest = end of log, earliest = oldest retained) for each partition.

    A partition the broker no longer knows (its topic was deleted) is left out; any other failure
    raises, so a transient error never reads as "no lag".
    """
    wanted = {TopicPartition(topic, partition): spec for topic, partition in set(partitions)}
    if not wanted:
        return {}
    futures = admin.list_offsets(wanted, request_timeout=timeout)
    out: dict[tuple[str, int], int] = {}
    for tp, fut in futures.items():
        try:
            out[(tp.topic, tp.partition)] = fut.result(timeout + 1).offset
        except KafkaException as exc:
            if exc.args[0].name() == "UNKNOWN_TOPIC_OR_PART":
                continue
            raise LagError(f"offsets of {tp.topic}[{tp.partition}]: {_kafka_reason(exc)}") from None
        except TimeoutError:
            raise LagError(f"offsets of {tp.topic}[{tp.partition}]: no answer within {timeout:g}s") from None
    return out


def consumer_lag(admin: AdminClient, groups: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S) -> list[PartitionLag]:
    """Lag of every committed partition of `groups`: one offsets request per group, one for the ends."""
    committed = {group: committed_offsets(admin, group, timeout) for group in groups}
    ends = log_offsets(admin, (tp for offsets in committed.values() for tp in offsets), OffsetSpec.latest(), timeout)
    return [lag for group in groups for lag in compute_lag(group, committed[group], ends)]


def dlq_records(admin: AdminClient, topic: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> int | None:
    """Records retained in `topic` (sum over partitions of end − earliest); None when it does not exist."""
    try:
        # All topics, not list_topics(topic): asking for one by name can make a broker with
        # auto.create.topics.enable create it.
        meta = admin.list_topics(timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        raise LagError(f"metadata of {topic}: {_kafka_reason(exc)}") from None
    if meta is None or meta.error is not None:
        return None
    partitions = [(topic, p) for p in meta.partitions]
    earliest = log_offsets(admin, partitions, OffsetSpec.earliest(), timeout)
    latest = log_offsets(admin, partitions, OffsetSpec.latest(), timeout)
    return sum(max(0, latest[tp] - earliest.get(tp, 0)) for tp in latest)


def read_snapshot(admin: AdminClient, groups: Sequence[str], dlq_topics: Sequence[str] = (), *,
                  timeout: float = DEFAULT_TIMEOUT_S) -> LagSnapshot:
    """Lag first: the first failure ends the reading (a broker that timed out once will again), and
    the lag is what the scaling and the most urgent alert need."""
    lags = consumer_lag(admin, groups, timeout=timeout)
    dlq = {}
    for topic in dlq_topics:
        size = dlq_records(admin, topic, timeout=timeout)
        if size is not None:
            dlq[topic] = size
    return LagSnapshot(lags, dlq)


class ConsumerLagCollector(Collector):
    """Prometheus collector: `botstream_consumer_lag{group,topic,partition}`, `botstream_dlq_records{topic}`
    and `botstream_consumer_lag_errors_total`.

    Register it in the process that serves the scrape (`botstream lag --serve`). Lag is a
    property of the cluster, not of a worker, so one exporter serves it however many workers run —
    a collector inside each streams replica would export the same series once per replica.
    """

    def __init__(self, settings: Settings, bootstrap: str, cache_s: float = 10.0, *,
                 groups: Iterable[str] = (), stale_s: float | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 fetch: Callable[[], LagSnapshot] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.groups = botstream_groups(settings, groups)
        self.dlq_topics = [settings.topic("replies.dlq")]
        self.bootstrap = bootstrap
        self.cache_s = cache_s
        self.stale_s = stale_s if stale_s is not None else max(60.0, 6 * cache_s)
        self.timeout = timeout
        self._fetch = fetch or self._fetch_from_broker
        self._clock = clock
        self._lock = threading.Lock()  # the HTTP server scrapes from several threads
        self._admin: AdminClient | None = None
        self._snapshot: LagSnapshot | None = None
        self._snapshot_at = float("-inf")  # when the snapshot was read
        self._tried_at = float("-inf")  # when the broker was last asked, successfully or not
        self.errors = 0

    def describe(self) -> Iterator[Metric]:
        # Declared without samples: registering the collector must not call the broker.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        lag, dlq, errors = self._families()
        if snapshot is not None:
            for p in snapshot.partitions:
                lag.add_metric([p.group, p.topic, str(p.partition)], p.lag)
            for topic, size in snapshot.dlq.items():
                dlq.add_metric([topic], size)
        errors.add_metric([], self.errors)
        yield from (lag, dlq, errors)

    def snapshot(self) -> LagSnapshot | None:
        """The cached snapshot, refreshed when older than `cache_s`; None when it is stale or missing."""
        with self._lock:
            now = self._clock()
            if now - self._tried_at >= self.cache_s:
                self._tried_at = now
                try:
                    self._snapshot = self._fetch()
                    self._snapshot_at = now
                except Exception as exc:  # noqa: BLE001 - a scrape must never raise: count it, log it
                    self.errors += 1
                    log.warning("consumer lag not read: %s", exc, extra={"bootstrap": self.bootstrap})
            if now - self._snapshot_at > self.stale_s:
                return None
            return self._snapshot

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(LAG_METRIC, "Records not yet committed by the consumer group (end offset - committed)",
                              labels=["group", "topic", "partition"]),
            GaugeMetricFamily(DLQ_METRIC, "Records retained in the dead-letter topic", labels=["topic"]),
            CounterMetricFamily(ERRORS_METRIC, "Lag reads that failed (broker unreachable, timed out, refused)",
                                labels=[]),
        )

    def _fetch_from_broker(self) -> LagSnapshot:
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.settings, bootstrap=self.bootstrap, timeout_s=self.timeout,
                                                   **client_logger_config()))
        return read_snapshot(self._admin, self.groups, self.dlq_topics, timeout=self.timeout)


def _kafka_reason(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    return str(err.str()) if err is not None and hasattr(err, "str") else str(exc)
