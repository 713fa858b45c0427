"""The records the sinks write besides retries: delivery results and dead letters (pure builders).

Every reply ends in exactly one `DeliveryResult` on `deliveries` (plus `skipped_duplicate` ones for
copies the ledger stopped), so analytics and the streams stage can count outcomes without reading
the sinks' tables. A dead letter is the reply itself, with the reason in `last_error` and in headers
an operator (and `botstream dlq`) can read without decoding the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from botstream.schemas.headers import CORRELATION_ID, DLQ_AT, DLQ_OUTCOME, DLQ_REASON
from botstream.sinks.retry import RetryHeaders, encode_retry_headers

__all__ = [
    "FinalOutcome",
    "dead_letter",
    "delivery_result",
    "log_fields",
    "origin_of",
]

FinalOutcome = Literal["delivered", "failed_permanent", "dead_lettered", "skipped_duplicate"]


def delivery_result(reply: Mapping[str, Any], outcome: FinalOutcome, *, at_ms: int, attempts: int,
                    message_id: str | None = None, http_status: int | None = None,
                    error_code: str | None = None, error: str | None = None) -> dict[str, Any]:
    """The `deliveries` record of one reply. Latency is from ingest's receipt of the causing update
    to now, and only for deliveries (a failure has no meaningful latency)."""
    received = int(reply.get("update_received_at_ms") or 0)
    latency = max(0, at_ms - received) if outcome == "delivered" and received else None
    return {
        "reply_id": reply["reply_id"], "chat_key": reply["chat_key"], "platform": reply["platform"],
        "bot_id": reply["bot_id"], "outcome": outcome, "platform_message_id": message_id,
        "attempts": attempts, "latency_ms": latency, "http_status": http_status, "error_code": error_code,
        "error": error[:1000] if error else None, "at_ms": at_ms,
        "correlation_id": reply.get("correlation_id") or "",
    }


def dead_letter(reply: Mapping[str, Any], reason: str, outcome: FinalOutcome, *, at_ms: int,
                origin: str | None) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The DLQ record (the reply with the reason as its last error) and its headers."""
    record = dict(reply)
    record["last_error"] = reason[:1000]
    record["first_error"] = reply.get("first_error") or record["last_error"]
    headers = encode_retry_headers(RetryHeaders.from_reply(record, origin))
    headers += [(DLQ_REASON, reason[:1000].encode()), (DLQ_OUTCOME, outcome.encode()),
                (DLQ_AT, str(at_ms).encode())]
    if reply.get("correlation_id"):
        headers.append((CORRELATION_ID, str(reply["correlation_id"]).encode()))
    return record, headers


def origin_of(topic: str, partition: int, offset: int) -> str:
    """Where a reply first failed, as the retry headers carry it: "topic/partition@offset"."""
    return f"{topic}/{partition}@{offset}"


def log_fields(reply: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """`extra=` of a log call about a reply: its ids, never its text (no message text at INFO)."""
    return {"reply_id": reply.get("reply_id"), "chat_key": reply.get("chat_key"),
            "correlation_id": reply.get("correlation_id"), "bot": reply.get("bot_id"),
            "attempt": reply.get("attempt"), **extra}
