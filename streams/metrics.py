"""Prometheus metrics of the streams stage (names are part of the operator's contract: docs/metrics.md).

The per-update ones are `LoopCounter` / `LoopHistogram` (no lock per increment: see
`botstream.core.loopmetrics`); `updates(platform, bot, outcome)` and friends return their cached children.
"""

from prometheus_client import Gauge

from botstream.core.loopmetrics import LoopCounter, LoopHistogram

UPDATES = LoopCounter("botstream_streams_updates_total", "Updates consumed, by what became of them",
                      ["platform", "bot", "outcome"])
DUPLICATES = LoopCounter("botstream_streams_duplicates_dropped_total", "Platform redeliveries dropped by dedupe",
                         ["platform", "bot"])
DEDUPE_EXPIRED = LoopCounter("botstream_streams_dedupe_expired_total", "Dedupe keys deleted after the window")
HANDLER_SECONDS = LoopHistogram("botstream_streams_handler_seconds", "Handler call duration", ["platform", "bot"],
                                buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30))
HANDLER_FAILURES = LoopCounter("botstream_streams_handler_failures_total", "Handler calls that raised or timed out",
                               ["platform", "bot", "reason"])
REPLIES_PLANNED = LoopCounter("botstream_streams_replies_planned_total", "Replies produced by handlers",
                              ["platform", "bot"])
QUARANTINED = LoopCounter("botstream_quarantined_total", "Records sent to quarantine", ["stage", "topic"])
OWNED_PARTITIONS = Gauge("botstream_streams_owned_partitions", "Partitions of updates this worker holds")
IN_FLIGHT = Gauge("botstream_streams_in_flight", "Updates taken but not yet acknowledged")
CHECKPOINT_SECONDS = LoopHistogram(
    "botstream_streams_checkpoint_seconds",
    "One checkpoint: changelog and outputs flushed, offsets committed, state written",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
RESTORE_SECONDS = LoopHistogram("botstream_streams_restore_seconds",
                                "Restoring one partition's state from its changelogs before processing it",
                                buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120))

updates = UPDATES.labels
duplicates = DUPLICATES.labels
handler_seconds = HANDLER_SECONDS.labels
handler_failures = HANDLER_FAILURES.labels
replies_planned = REPLIES_PLANNED.labels
