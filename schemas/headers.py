"""Kafka record header names every stage reads or writes: part of the wire contract.

Headers carry what a stage (or an operator) needs without decoding the value; the value stays
authoritative. Names are lower-case ASCII.
"""

from __future__ import annotations

__all__ = ["CORRELATION_ID", "PLATFORM", "SOURCE_OFFSET", "TRACEPARENT"]

CORRELATION_ID = "correlation-id"  # the request that caused the record (ingest's X-Request-Id)
TRACEPARENT = "traceparent"        # W3C trace context, so every stage's span joins one trace
PLATFORM = "platform"              # telegram | slack | discord | whatsapp | generic (on updates)
SOURCE_OFFSET = "botstream-source-offset"  # on changelog records: the input offset they belong to
