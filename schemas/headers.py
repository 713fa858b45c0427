"""Kafka record header names every stage reads or writes: part of the wire contract.

Headers carry what a stage (or an operator) needs without decoding the value; the value stays
authoritative. Names are lower-case ASCII.
"""

from __future__ import annotations

__all__ = ["CORRELATION_ID", "PLATFORM", "SOURCE", "TRACEPARENT"]

CORRELATION_ID = "correlation-id"  # the request that caused the record (ingest's X-Request-Id)
TRACEPARENT = "traceparent"        # W3C trace context, so every stage's span joins one trace
PLATFORM = "platform"              # telegram | slack | discord | whatsapp | generic (on updates)
SOURCE = "botstream-source"  # on changelog records: "<input topic>@<offset>" of the write they carry

# The retry chain (replies.retry.<n>) and the dead-letter topic (replies.dlq): written by the sinks,
# read by the sinks, `botstream dlq` and operators' tools (`botstream topics tail --json`).
RETRY_ATTEMPT = "x-botstream-attempt"          # attempts made so far (decimal)
RETRY_NOT_BEFORE = "x-botstream-not-before"    # unix ms before which the reply must not be sent
RETRY_FIRST_ERROR = "x-botstream-first-error"  # why the first attempt failed (at most 1000 bytes)
RETRY_LAST_ERROR = "x-botstream-last-error"    # why the latest attempt failed (at most 1000 bytes)
RETRY_ORIGIN = "x-botstream-origin"            # where the reply first failed: "topic/partition@offset"
RETRY_HOP = "x-botstream-hop"                  # which hop of the chain this record is: "<reply id>/<attempt>"
DLQ_REASON = "x-botstream-dlq-reason"          # why the reply was dead-lettered
DLQ_OUTCOME = "x-botstream-dlq-outcome"        # failed_permanent | dead_lettered
DLQ_AT = "x-botstream-dlq-at"                  # unix ms it was dead-lettered
REPLAY_OF = "x-botstream-replay-of"            # on a reply replayed from the DLQ: its "<partition>@<offset>"
REPLAYED = "x-botstream-replayed"              # on a DLQ marker (null value): the "<partition>@<offset>" replayed
REPLAYED_AT = "x-botstream-replayed-at"        # on a DLQ marker: unix ms of the replay
REPLAYED_TO = "x-botstream-replayed-to"        # on a DLQ marker: "replies-topic/partition@offset" written

__all__ += [
    "DLQ_AT", "DLQ_OUTCOME", "DLQ_REASON", "REPLAYED", "REPLAYED_AT", "REPLAYED_TO", "REPLAY_OF",
    "RETRY_ATTEMPT", "RETRY_FIRST_ERROR", "RETRY_HOP", "RETRY_LAST_ERROR", "RETRY_NOT_BEFORE", "RETRY_ORIGIN",
]
