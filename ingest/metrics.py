"""Prometheus metrics of the ingest stage (the names are part of the operator's contract).

Labels stay low-cardinality on purpose: `bot` is the id of a configured bot or "unknown" (a
stranger probing random URLs must not mint series), `platform` one of the five or "unknown", and
`reason` the fixed strings of `IngestError.reason`.

Several worker processes (`botstream ingest --workers N`) share one port, and a scrape lands on any
one of them, so in that mode prometheus_client's multiprocess mode is used: `botstream.ingest.worker` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh folder *before* the workers import this module, every worker
writes its values there, and /metrics aggregates the folder (`render_metrics`). Counters and
histograms sum over workers; the queue-depth gauge is `livesum` (live workers only). Limitation of
that mode: a worker that died and was replaced leaves its counters in the folder (they keep counting
towards totals, which is what a counter should do) but its gauge files are not reaped until restart.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"
# From well under a millisecond (loopback broker) to the 2 s ack deadline and past it.
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25,
                   0.5, 1.0, 2.0, 3.0, 5.0)

REQUESTS = Counter("botstream_ingest_requests_total", "Webhook requests answered, by status",
                   ["platform", "bot", "status"])
REJECTED = Counter("botstream_ingest_verification_failures_total",
                   "Webhook requests refused with a 4xx (signature, size, media type, JSON, unknown bot)",
                   ["platform", "reason"])
HANDSHAKES = Counter("botstream_ingest_handshakes_total",
                     "Handshakes answered directly (Slack url_verification, Discord PING, WhatsApp GET)",
                     ["platform", "bot"])
RECORDS = Counter("botstream_ingest_records_produced_total", "Update records acknowledged by the broker",
                  ["platform", "bot"])
UNAVAILABLE = Counter("botstream_ingest_unavailable_total",
                      "503 answers: records not durable in time (the platform redelivers)", ["platform", "reason"])
ACK_SECONDS = Histogram("botstream_ingest_ack_seconds",
                        "Webhook request received -> response sent (includes the broker's ack)", ["platform"],
                        buckets=LATENCY_BUCKETS)
PRODUCE_SECONDS = Histogram("botstream_ingest_produce_seconds",
                            "Record handed to the producer -> broker acknowledgement seen on the event loop",
                            buckets=LATENCY_BUCKETS)
CONNECTIONS_CLOSED = Counter("botstream_ingest_connections_closed_total",
                             "Connections ingest closed on a limit: header_timeout, body_timeout, header_too_large, "
                             "evicted (idle, for a new one at the connection limit), at_limit, bad_request",
                             ["reason"])
OPEN_CONNECTIONS = Gauge("botstream_ingest_open_connections", "Client connections open on this process's listener",
                         multiprocess_mode="livesum")
QUEUE_DEPTH = Gauge("botstream_ingest_producer_queue_depth",
                    "Records and requests waiting in the producer's local queue (len(producer))",
                    multiprocess_mode="livesum")


class IngestMetrics:
    """The ingest metrics with their labelled children cached: `.labels()` takes a lock and builds a
    tuple on every call, which shows at tens of thousands of requests per second."""

    def __init__(self) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, platform: str, bot: str, status: int, seconds: float) -> None:
        """One answered request: the counter and histogram children of (platform, bot, status) are
        looked up once, then reused from one dict lookup per request."""
        children = self._requests.get((platform, bot, status))
        if children is None:
            children = self._requests[(platform, bot, status)] = (
                self._child(REQUESTS, platform, bot, str(status)), self._child(ACK_SECONDS, platform))
        children[0].inc()
        children[1].observe(seconds)

    def rejected(self, platform: str, reason: str) -> None:
        self._child(REJECTED, platform, reason).inc()

    def handshake(self, platform: str, bot: str) -> None:
        self._child(HANDSHAKES, platform, bot).inc()

    def produced(self, platform: str, bot: str, count: int) -> None:
        if count:
            self._child(RECORDS, platform, bot).inc(count)

    def unavailable(self, platform: str, reason: str) -> None:
        self._child(UNAVAILABLE, platform, reason).inc()

    def produce_latency(self, seconds: float) -> None:
        PRODUCE_SECONDS.observe(seconds)

    def queue_depth(self, depth: int) -> None:
        QUEUE_DEPTH.set(depth)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text and its content type; aggregates every worker in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
