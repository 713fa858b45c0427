"""Prometheus metrics of the streams stage (names are part of the operator's contract: README)."""

from prometheus_client import Counter, Gauge, Histogram

UPDATES = Counter("botstream_streams_updates_total", "Updates consumed, by what became of them",
                  ["platform", "bot", "outcome"])
DUPLICATES = Counter("botstream_streams_duplicates_dropped_total", "Platform redeliveries dropped by dedupe",
                     ["platform", "bot"])
DEDUPE_EXPIRED = Counter("botstream_streams_dedupe_expired_total", "Dedupe keys deleted after the window")
HANDLER_SECONDS = Histogram("botstream_streams_handler_seconds", "Handler call duration", ["platform", "bot"],
                            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30))
HANDLER_FAILURES = Counter("botstream_streams_handler_failures_total", "Handler calls that raised or timed out",
                           ["platform", "bot", "reason"])
REPLIES_PLANNED = Counter("botstream_streams_replies_planned_total", "Replies produced by handlers",
                          ["platform", "bot"])
QUARANTINED = Counter("botstream_quarantined_total", "Records sent to quarantine", ["stage", "topic"])
OWNED_PARTITIONS = Gauge("botstream_streams_owned_partitions", "Partitions of updates this worker holds")
IN_FLIGHT = Gauge("botstream_streams_in_flight", "Updates taken but not yet acknowledged")
