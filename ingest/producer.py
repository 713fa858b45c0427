"""`KafkaSink`: confluent-kafka's Producer (librdkafka) behind the `RecordSink` protocol.

Why this shape:

- **Durable, same partition number everywhere.** The configuration is built on the project's one
  Kafka client layer (`botstream.core.kafka.producer_config`): idempotent, acks=all (an ack means
  the record is on every in-sync replica, and retries inside librdkafka cannot duplicate or reorder
  it), and the murmur2 partitioner that keeps a chat on the partition number of its state.
- **One poll thread.** librdkafka delivers reports only from `poll()`; a single daemon thread calls
  it and hands each batch of reports to the event loop with ONE `call_soon_threadsafe` (a per-record
  wake-up would cost a syscall per record). The loop resolves one future per request, when the last
  of its records is acknowledged, so the HTTP answer waits for every record and nothing else.
- **Bounded waits.** `message.timeout.ms` equals the ack deadline (settings.ack_timeout_s), so a
  record that cannot be delivered reports failure by the time the request gives up; a full local
  queue is retried until that same deadline. Either way the caller gets `NotDurable` (503) and the
  platform redelivers. A record that timed out here may still have reached the broker (the ack was
  lost): that is a duplicate for the dedupe table, never a loss.
- **Health.** Deliveries and a metadata probe every `probe_interval_s` (on its own thread, since a
  metadata request blocks and must not delay delivery reports) feed `ProducerHealth`, which answers
  /readyz; a fatal librdkafka error makes /healthz fail so the process gets replaced.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from botstream.core import kafka
from botstream.core.settings import Settings
from botstream.ingest.health import ProducerHealth, Transition
from botstream.ingest.metrics import IngestMetrics
from botstream.ingest.sink import NotDurable, OutboundRecord, SinkStatus
from botstream.schemas.topics import WEBHOOK_RECORD_BYTES

log = logging.getLogger("botstream.ingest.producer")

# `Settings.ingest_linger_ms` (5 ms by default) is how long the producer gathers the records of
# concurrent requests into one produce request. Measured on the development machine (loopback broker):
# at 1,000 records/s the median produce->ack time is ~1.5 ms with linger.ms=0, ~2.5 ms with 1, ~3.7 ms with
# 2 and ~5.8 ms with 5, while the CPU per record at the producer's ceiling is the same for all four
# (`python -m bench.ingest.bench_ingest --sweep` compares them end to end). Below the ceiling the
# broker's work is per produce request: across the whole pipeline at 500 updates/s, 5 ms took ingest
# from 0.43 to 0.37 ms of CPU per update for an ACK p50 of 6.6 ms instead of 2.5 (docs/benchmarks.md).
# Compression is the client layer's lz4: it stored the bench's Update records 3.5x smaller on the
# broker (9.9 MB -> 2.8 MB for 20,000; they carry the raw webhook JSON), i.e. 7 days of `updates`
# retention and its replication traffic, for no measurable CPU: librdkafka compresses on its own
# thread, ~150k records per CPU-second either way, some 30x more than ingest's HTTP front end can feed it.
# The catalog's limit of the updates topic (an Update carries the raw body: WhatsApp's 3 MB plus the
# normalized fields); ingest's size check keeps every record within it before producing.
MAX_RECORD_BYTES = WEBHOOK_RECORD_BYTES
POLL_TIMEOUT_S = 0.1
QUEUE_FULL_BACKOFF_S = 0.002
GAUGE_INTERVAL_S = 0.5
ACK_TIMEOUT = "ack_timeout"  # what a request's future resolves to when its deadline passes first
SIZE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
TOPIC_ERRORS = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                          KafkaError._UNKNOWN_PARTITION})


def ingest_producer_config(settings: Settings, *, bootstrap: str | None = None, linger_ms: int | None = None,
                           client_id: str = "botstream-ingest", **overrides: Any) -> dict[str, Any]:
    """The client layer's durable producer, with what ingest adds (see the module docstring): waits
    bounded by the ack deadline, room for the largest webhook, and quiet reconnect logs."""
    if linger_ms is None:
        linger_ms = settings.ingest_linger_ms
    timeout_ms = max(int(settings.ack_timeout_s * 1000), linger_ms + 100)
    return kafka.producer_config(settings, bootstrap=bootstrap, client_id=client_id, linger_ms=linger_ms, **{
        "message.timeout.ms": timeout_ms,
        "request.timeout.ms": timeout_ms,
        "message.max.bytes": MAX_RECORD_BYTES,
        # librdkafka logs every failed reconnect; readiness transitions are logged once instead.
        "log_level": 2,
        **overrides,
    })


class _Pending:
    """The records of one request: resolved when the last is acked, at the first failure, or when the
    ack deadline passes (one timer per request, cheaper than asyncio.wait_for's wrapper future)."""

    __slots__ = ("future", "started", "expected", "settled", "sealed", "timer")

    def __init__(self, future: asyncio.Future[KafkaError | str | None]) -> None:
        self.future = future
        self.started = time.perf_counter()
        self.expected = 0
        self.settled = 0
        self.sealed = False  # every record handed to the producer: `expected` is final
        self.timer: asyncio.TimerHandle | None = None

    def settle(self, error: KafkaError | None) -> None:
        self.settled += 1
        if self.future.done():
            return
        if error is not None:
            self.future.set_result(error)
        elif self.sealed and self.settled == self.expected:
            self.future.set_result(None)

    def seal(self) -> None:
        self.sealed = True
        if self.settled == self.expected and not self.future.done():
            self.future.set_result(None)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_result(ACK_TIMEOUT)


class KafkaSink:
    """A `RecordSink` on a real cluster. `start()` on the serving event loop, `close()` at shutdown."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        topic: str,
        ack_timeout_s: float,
        metrics: IngestMetrics | None = None,
        min_insync_replicas: int = 1,
        probe_interval_s: float = 2.0,
        probe_timeout_s: float = 2.0,
        stale_after_s: float = 10.0,
        producer_factory: Callable[[dict[str, Any]], Any] = Producer,
    ) -> None:
        self.topic = topic
        self.ack_timeout_s = ack_timeout_s
        self.metrics = metrics or IngestMetrics()
        self.min_insync_replicas = min_insync_replicas
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.health = ProducerHealth(stale_after_s)
        self._producer = producer_factory({**config, "error_cb": self._on_error})
        self._delivered: list[tuple[_Pending, KafkaError | None]] = []  # touched by the poll thread only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._threads = [threading.Thread(target=self._poll_loop, name="ingest-kafka-poll", daemon=True),
                         threading.Thread(target=self._probe_loop, name="ingest-kafka-probe", daemon=True)]
        for thread in self._threads:
            thread.start()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the threads, then flush what is still queued (requests still waiting get their acks)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)
        left: int = await asyncio.to_thread(self._producer.flush, timeout_s)
        self._dispatch()  # reports served by flush() settle the last waiting requests
        if left:
            log.warning("producer closed with %d record(s) undelivered", left)

    def status(self) -> SinkStatus:
        return self.health.status(time.monotonic())

    # -- producing (event loop) ------------------------------------------------------------------------

    async def produce_all(self, records: Sequence[OutboundRecord]) -> None:
        loop = self._loop
        if loop is None or self._stopping.is_set():
            raise NotDurable("not_started", "the producer is not running")
        if not self.health.alive:
            raise NotDurable("producer_fatal", "the producer hit a fatal error")
        deadline = loop.time() + self.ack_timeout_s
        pending = _Pending(loop.create_future())
        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    produce(record.topic, record.value, record.key, headers=record.headers,
                            on_delivery=partial(self._on_delivery, pending))
                    break
                except BufferError:  # local queue full: the poll thread is draining it
                    if loop.time() >= deadline:
                        raise NotDurable("queue_full", "producer queue full until the ack deadline") from None
                    await asyncio.sleep(QUEUE_FULL_BACKOFF_S)
                except KafkaException as exc:
                    raise _refusal(exc.args[0]) from None
            pending.expected += 1
        pending.seal()
        if not pending.future.done():
            pending.timer = loop.call_at(deadline, pending.expire)
        try:
            outcome = await pending.future
        finally:
            if pending.timer is not None:
                pending.timer.cancel()
        if outcome is None:
            return
        if isinstance(outcome, str):
            raise NotDurable(ACK_TIMEOUT, "no broker acknowledgement within the deadline")
        raise _refusal(outcome)

    # -- the poll thread -------------------------------------------------------------------------------

    def _on_delivery(self, pending: _Pending, error: KafkaError | None, _message: Any) -> None:
        self._delivered.append((pending, error))

    def _poll_loop(self) -> None:
        producer = self._producer
        next_gauge = 0.0
        while not self._stopping.is_set():
            producer.poll(POLL_TIMEOUT_S)
            self._dispatch()
            now = time.monotonic()
            if now >= next_gauge:
                self.metrics.queue_depth(len(producer))
                next_gauge = now + GAUGE_INTERVAL_S

    def _dispatch(self) -> None:
        batch = self._delivered
        if not batch:
            return
        self._delivered = []
        now = time.monotonic()
        failure = next((e for _, e in batch if e is not None and e.code() not in SIZE_ERRORS), None)
        if failure is not None:
            self._log_transition(self.health.failed(now, f"delivery failed: {failure.str()}"))
        if any(e is None for _, e in batch):
            self._log_transition(self.health.succeeded(now))
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._settle, batch)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _settle(self, batch: list[tuple[_Pending, KafkaError | None]]) -> None:
        now = time.perf_counter()
        observe = self.metrics.produce_latency
        for pending, error in batch:
            observe(now - pending.started)
            pending.settle(error)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.health.fatal(error.str())
            log.error("fatal producer error, restart needed: %s", error.str())
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._log_transition(self.health.failed(time.monotonic(), "all brokers down"))
        else:
            log.debug("producer error: %s", error.str())

    # -- the probe thread ------------------------------------------------------------------------------

    def _probe_loop(self) -> None:
        while not self._stopping.is_set():
            self.probe_once()
            self._stopping.wait(self.probe_interval_s)

    def probe_once(self) -> bool:
        """Ask a broker for the topic's metadata: does it exist, does every partition have a leader
        and enough in-sync replicas to take acks=all writes?"""
        now = time.monotonic
        try:
            metadata = self._producer.list_topics(self.topic, timeout=self.probe_timeout_s)
        except KafkaException as exc:
            self._log_transition(self.health.failed(now(), f"metadata request failed: {exc.args[0].str()}"))
            return False
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            self._log_transition(self.health.failed(now(), f"topic {self.topic} does not exist"))
            return False
        weak = [p.id for p in topic.partitions.values() if p.leader < 0 or len(p.isrs) < self.min_insync_replicas]
        if weak:
            self._log_transition(self.health.failed(
                now(), f"partitions {weak} of {self.topic} lack a leader or in-sync replicas"))
            return False
        self._log_transition(self.health.succeeded(now()))
        return True

    @staticmethod
    def _log_transition(transition: Transition | None) -> None:
        if transition is None:
            return
        if transition.ready:
            log.info("producer ready: broker reachable")
        else:
            log.warning("producer not ready: %s", transition.reason)


def _refusal(error: KafkaError) -> NotDurable:
    """A delivery or produce error as the 503 the platform should get (with a metric-safe reason)."""
    code = error.code()
    if code in SIZE_ERRORS:
        log.error("the broker refused a record as too large: raise max.message.bytes of the updates topic "
                  "(ingest accepts up to %d bytes per record)", MAX_RECORD_BYTES)
        return NotDurable("record_too_large", "the record exceeds the topic's size limit")
    if code == KafkaError._MSG_TIMED_OUT:
        return NotDurable(ACK_TIMEOUT, "no broker acknowledgement within the deadline")
    if code in TOPIC_ERRORS:
        return NotDurable("topic_unavailable", "the updates topic is not available")
    if code == KafkaError._QUEUE_FULL:
        return NotDurable("queue_full", "producer queue full")
    return NotDurable("delivery_failed", "the broker did not acknowledge the record")
