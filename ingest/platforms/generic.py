"""Generic (GitHub-style) webhooks: for senders that are not a chat platform we know.

Contract for a sender:

- `POST` with `Content-Type: application/json` and a JSON object body.
- `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 with the bot's `secret` over exactly these bytes:
  - by default, the raw body (GitHub's scheme);
  - with the bot's optional signed-timestamp scheme (`timestamp_header` set in the bots file), the
    ASCII decimal unix seconds of that header, one `.`, then the raw body:
    `HMAC-SHA256(secret, "{timestamp}." + body)`. The timestamp must be within
    `timestamp_tolerance_s` (default 300) of ingest's clock, so a captured request cannot be
    replayed after that window; a request without it is refused.
  Nothing else of the request is signed: no other header, not the URL.
- Dedupe id: the body's `id` (string or integer), which the signature covers. Redeliveries must
  reuse it. Headers are never used for it (`X-GitHub-Delivery` and `X-Request-Id` are not signed:
  a replay with new values of them would otherwise count as a new update). No `id` -> 400.
- Body fields:
  - `chat_id` (required; string or integer, no ':'): the conversation; its updates stay in order.
  - `text` (string), `user_id` (string or integer): optional.
  - `kind`: one of message, command, callback, edit, reaction, member, interaction, status, other;
    anything else (or absent) means message.
  - optional: `chat_type` (private, group, supergroup, channel, thread; else unknown), `thread_id`,
    `reply_to` (strings or integers), `locale` (string), `ts_ms` (integer, ms since the epoch),
    `from_bot` (boolean).
- A GitHub `ping` event (`X-GitHub-Event: ping`, sent when the hook is created) whose body has no
  `chat_id` is accepted and produces nothing (the unsigned header can never silence a message).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest, Unauthorized
from botstream.ingest.platforms.base import (
    CHAT_TYPES,
    KINDS,
    Outcome,
    RequestContext,
    Update,
    WebhookRequest,
    accepted,
    check_bot_platform,
    check_content_type,
    check_method,
    check_signed_timestamp,
    constant_time_equal,
)
from botstream.ingest.platforms.hub_signature import HUB_SIGNATURE_HEADER, verify_hub_signature
from botstream.ingest.platforms.jsonfields import (
    get_bool,
    get_id,
    get_int,
    get_str,
    parse_json_object,
)

EVENT_HEADER = "x-github-event"
TIMESTAMP_HEADER_KEY = "timestamp_header"  # bots file keys of the signed-timestamp scheme
TIMESTAMP_TOLERANCE_KEY = "timestamp_tolerance_s"
DEFAULT_TIMESTAMP_TOLERANCE_S = 300
_PREFIX = "sha256="


def verify_generic_signature(secret: str, body: bytes, signature: str | None) -> None:
    """Raise Unauthorized unless `signature` is `sha256=` HMAC-SHA256(secret, body)."""
    verify_hub_signature(secret, body, signature)


def timestamped_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value of the signed-timestamp scheme: over `{timestamp}.` + body."""
    message = timestamp.encode() + b"." + body
    return _PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_timestamped_signature(secret: str, header: str, tolerance_s: int, timestamp: str | None,
                                 body: bytes, signature: str | None, now: float) -> None:
    """Raise Unauthorized unless `signature` signs `{timestamp}.` + body and the timestamp (the
    value of `header`) is within `tolerance_s` of `now`."""
    if not signature:
        raise Unauthorized("signature_missing", "no X-Hub-Signature-256 header")
    timestamp = check_signed_timestamp(timestamp, header, now, tolerance_s)
    received = signature.strip().lower()
    if not received.startswith(_PREFIX):
        raise Unauthorized("signature_malformed", "X-Hub-Signature-256 must be sha256=<hex>")
    if not constant_time_equal(timestamped_signature(secret, timestamp, body), received):
        raise Unauthorized("signature_mismatch", "X-Hub-Signature-256 does not match the timestamp and body")


def signed_timestamp_scheme(bot: BotConfig) -> tuple[str, int] | None:
    """(header name, tolerance in seconds) when the bot uses the signed-timestamp scheme, else None."""
    header = bot.credentials.get(TIMESTAMP_HEADER_KEY)
    if not header:
        return None
    tolerance = bot.credentials.get(TIMESTAMP_TOLERANCE_KEY)
    return str(header), int(str(tolerance)) if tolerance else DEFAULT_TIMESTAMP_TOLERANCE_S


def delivery_id(payload: dict[str, Any]) -> str:
    """The sender's dedupe id: the signed body's `id`; without one we cannot dedupe."""
    body_id = get_id(payload, "id")
    if body_id is None:
        raise BadRequest("missing_update_id", "no body id (headers are not signed, so they cannot be the dedupe id)")
    return body_id


def normalize_generic_event(ctx: RequestContext, payload: dict[str, Any], update_id: str) -> Update:
    chat_id = get_id(payload, "chat_id")
    if chat_id is None:
        raise BadRequest("missing_chat_id", "body needs chat_id (string or integer)")
    kind = get_str(payload, "kind")
    chat_type = get_str(payload, "chat_type")
    return ctx.update(
        chat_id=chat_id, update_id=update_id, kind=kind if kind in KINDS else "message",
        chat_type=chat_type if chat_type in CHAT_TYPES else "unknown",
        user_id=get_id(payload, "user_id"), text=get_str(payload, "text"),
        thread_id=get_id(payload, "thread_id"), reply_to=get_id(payload, "reply_to"),
        locale=get_str(payload, "locale"), platform_ts_ms=get_int(payload, "ts_ms"),
        from_bot=get_bool(payload, "from_bot"),
    )


class GenericAdapter:
    platform = "generic"
    max_body_bytes: int | None = None

    def handle(self, bot: BotConfig, request: WebhookRequest, *, now: float, received_at_ms: int,
               correlation_id: str) -> Outcome:
        check_bot_platform(bot, self.platform)
        check_method(request)
        headers = request.headers
        signature = headers.get(HUB_SIGNATURE_HEADER)
        scheme = signed_timestamp_scheme(bot)
        if scheme is None:
            verify_generic_signature(bot.secret("secret"), request.body, signature)
        else:
            header, tolerance = scheme
            verify_timestamped_signature(bot.secret("secret"), header, tolerance, headers.get(header.lower()),
                                         request.body, signature, now)
        check_content_type(headers)
        payload = parse_json_object(request.body)
        if headers.get(EVENT_HEADER) == "ping" and "chat_id" not in payload:
            return accepted([])
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        return accepted([normalize_generic_event(ctx, payload, delivery_id(payload))])
