"""Generic (GitHub-style) webhooks: for senders that are not a chat platform we know.

Contract for a sender:

- `POST` with `Content-Type: application/json` and a JSON object body.
- `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`, `secret` being the bot's.
- Dedupe id, first present of: header `X-GitHub-Delivery`, header `X-Request-Id`, body `id`
  (string or integer). None of them -> 400. Redeliveries must reuse it.
- Body fields:
  - `chat_id` (required; string or integer, no ':'): the conversation; its updates stay in order.
  - `text` (string), `user_id` (string or integer): optional.
  - `kind`: one of message, command, callback, edit, reaction, member, interaction, status, other;
    anything else (or absent) means message.
  - optional: `chat_type` (private, group, supergroup, channel, thread; else unknown), `thread_id`,
    `reply_to` (strings or integers), `locale` (string), `ts_ms` (integer, ms since the epoch),
    `from_bot` (boolean).
- A GitHub `ping` event (`X-GitHub-Event: ping`, sent when the hook is created) is accepted and
  produces nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest
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
)
from botstream.ingest.platforms.hub_signature import HUB_SIGNATURE_HEADER, verify_hub_signature
from botstream.ingest.platforms.jsonfields import (
    clean_text,
    get_bool,
    get_id,
    get_int,
    get_str,
    parse_json_object,
)

DELIVERY_ID_HEADERS = ("x-github-delivery", "x-request-id")
EVENT_HEADER = "x-github-event"


def verify_generic_signature(secret: str, body: bytes, signature: str | None) -> None:
    """Raise Unauthorized unless `signature` is `sha256=` HMAC-SHA256(secret, body)."""
    verify_hub_signature(secret, body, signature)


def delivery_id(headers: Mapping[str, str], payload: dict[str, Any]) -> str:
    """The sender's dedupe id: a delivery header, else the body's `id`; without one we cannot dedupe."""
    for name in DELIVERY_ID_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return clean_text(value.strip())
    body_id = get_id(payload, "id")
    if body_id is None:
        raise BadRequest("missing_update_id", "no X-GitHub-Delivery, X-Request-Id or body id")
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
        verify_generic_signature(bot.secret("secret"), request.body, request.headers.get(HUB_SIGNATURE_HEADER))
        check_content_type(request.headers)
        payload = parse_json_object(request.body)
        if request.headers.get(EVENT_HEADER) == "ping":
            return accepted([])
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        return accepted([normalize_generic_event(ctx, payload, delivery_id(request.headers, payload))])
