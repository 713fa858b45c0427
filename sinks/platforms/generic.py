"""Generic (GitHub-style) webhook receivers: the reply JSON POSTed to the bot's URL, HMAC-signed.

The receiver verifies `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256(secret, raw body), the same
scheme ingest accepts from generic sources, so one secret serves both directions.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.sinks.errors import InvalidReply
from botstream.sinks.outcomes import Delivered, Outcome, Permanent, Retryable, Wait
from botstream.sinks.platforms.base import (
    InboundResponse,
    OutboundRequest,
    check_platform,
    common_headers,
    credential,
    encode_json,
)

# No platform limit exists; this is what coalescing packs into one message (a common chat size).
TEXT_LIMIT = 4096
DEFAULT_RETRY_AFTER_S = 1.0
HEADER_SIGNATURE = "X-Hub-Signature-256"
HEADER_REPLY_ID = "X-Botstream-Reply-Id"  # lets the receiver drop a retried duplicate
# What the receiver sees: the reply minus the sink's internal bookkeeping (attempts, errors, trace).
PUBLIC_FIELDS = ("reply_id", "bot_id", "chat_id", "chat_type", "kind", "text", "markup", "options",
                 "reply_to", "target_message_id", "thread_id", "chat_seq", "correlation_id", "created_at_ms")


def sign(secret: str, content: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def build_request(bot: BotConfig, reply: Mapping[str, Any]) -> OutboundRequest:
    check_platform(bot, reply, "generic")
    if not bot.api_base_url:
        raise InvalidReply(f"generic bot {bot.id!r} has no api_base_url to deliver to")
    secret = credential(bot, "secret")
    body = {key: reply.get(key) for key in PUBLIC_FIELDS}
    headers = common_headers(reply)
    headers[HEADER_REPLY_ID] = str(reply.get("reply_id"))
    headers[HEADER_SIGNATURE] = sign(secret, encode_json(body))
    return OutboundRequest("POST", bot.api_base_url, headers, body)


def classify(response: InboundResponse) -> Outcome:
    """HTTP semantics only: 2xx delivered, 429 wait (the receiver is one bucket), 408/425/5xx retry."""
    if 200 <= response.status < 300:
        body = response.json_object()
        message_id = body.get("message_id", body.get("id"))
        return Delivered(str(message_id) if message_id is not None else None)
    if response.status == 429:
        return Wait(response.retry_after_s(DEFAULT_RETRY_AFTER_S), "bot")
    reason = response.body[:200].decode(errors="replace") or f"HTTP {response.status}"
    if response.status >= 500 or response.status in (408, 425):
        return Retryable(reason, response.status)
    return Permanent(reason, response.status, None)
