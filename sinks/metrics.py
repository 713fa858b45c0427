"""Prometheus metrics of the sinks stage (names are part of the operator's contract: docs/metrics.md).

Labels are bounded: platform, bot and outcome/level/scope come from configuration and enums, never
from chat ids or reply ids. The per-reply ones are `LoopCounter` / `LoopHistogram` (no lock per
increment: see `botstream.core.loopmetrics`).
"""

from prometheus_client import Gauge

from botstream.core.loopmetrics import LoopCounter as Counter
from botstream.core.loopmetrics import LoopHistogram as Histogram

DELIVERIES = Counter("botstream_sinks_deliveries_total", "Final outcomes of replies",
                     ["platform", "bot", "outcome"])
SEND_SECONDS = Histogram("botstream_sinks_send_seconds", "Duration of one platform API call",
                         ["platform", "bot"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
END_TO_END_SECONDS = Histogram("botstream_sinks_update_to_delivered_seconds",
                               "Ingest received the update -> the platform accepted the reply",
                               ["platform", "bot"],
                               buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))
RATE_LIMIT_WAIT = Histogram("botstream_sinks_rate_limit_wait_seconds",
                            "Waits for a bot's or chat's budget before a send (only the chat waits)",
                            ["platform", "bot"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
RATE_LIMITED = Counter("botstream_sinks_429_total", "Rate-limit answers received from the platform",
                       ["platform", "bot", "scope"])
RETRY_RECORDS = Counter("botstream_sinks_retry_records_total", "Replies produced to a retry level",
                        ["platform", "bot", "level"])
DLQ_RECORDS = Counter("botstream_sinks_dlq_records_total", "Replies produced to the DLQ",
                      ["platform", "bot", "outcome"])
BREAKER_STATE = Gauge("botstream_sinks_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
                      ["platform", "bot"])
COALESCED = Counter("botstream_sinks_coalesced_replies_total",
                    "Replies that went out inside another reply's message (one send for several)",
                    ["platform", "bot"])
LEDGER_SKIPS = Counter("botstream_sinks_ledger_skips_total", "Copies of replies the ledger stopped",
                       ["platform", "bot"])
HELD = Counter("botstream_sinks_held_replies_total", "Replies held behind their chat's reply in the retry chain",
               ["platform", "bot"])
STALE_RETRIES = Counter("botstream_sinks_stale_retry_records_total",
                        "Retry records that were not their chat's live hop (duplicates after a crash)")
QUARANTINED = Counter("botstream_sinks_quarantined_total", "Undecodable records sent to quarantine", ["topic"])
IN_FLIGHT = Gauge("botstream_sinks_in_flight", "Chats waiting on something (a send, a budget, a retry's delay)",
                  ["lane"])
OWNED_PARTITIONS = Gauge("botstream_sinks_owned_partitions", "Partitions of replies this worker owns")
BUDGET_SHARE = Gauge("botstream_sinks_budget_share", "This worker's share of each bot's global budget", ["bot"])
ABANDONED = Counter("botstream_sinks_abandoned_total",
                    "Events given back unacknowledged at a rebalance or stop (redone by the next owner)")

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}

deliveries = DELIVERIES.labels
end_to_end = END_TO_END_SECONDS.labels
