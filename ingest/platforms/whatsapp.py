"""WhatsApp Cloud API webhooks: Meta's `X-Hub-Signature-256` HMAC over the raw body, batched payloads.

GET with `hub.mode=subscribe` is the subscription handshake: 200 with the raw `hub.challenge` when
`hub.verify_token` equals the bot's verify_token, 403 otherwise. A POST
(`entry[].changes[].value`) may carry several messages and status callbacks, possibly for several
users: each becomes its own Update with its own chat id `{phone_number_id}/{wa_id}`. The raw body is
stored once, on the batch's first Update; the others have an empty `raw` and
`platform_meta["raw_update_id"]`, the update id of that first record (same request, same
`correlation_id`) — a 1 MB batch of 300 items is 1 MB on the topic, not 300 MB. Message kinds: text (command when it starts with "/"), media / location /
contacts (message with an attachment summary), interactive button or list replies and template
buttons (callback), reactions (reaction), anything else (other). Statuses (sent / delivered / read /
failed) are kind status with dedupe id `{status id}:{status}`.

A single item lacking its id or sender is skipped rather than failing the POST: a 4xx would make
Meta redeliver the whole batch, valid neighbours included, for 7 days, and the bad item would fail
every time. A POST with nothing to map is accepted empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest
from botstream.ingest.platforms.base import (
    HandshakeResponse,
    Outcome,
    RequestContext,
    Update,
    WebhookRequest,
    accepted,
    attachment,
    check_body_size,
    check_bot_platform,
    check_content_type,
    check_method,
    compact_meta,
    constant_time_equal,
)
from botstream.ingest.platforms.hub_signature import HUB_SIGNATURE_HEADER, verify_hub_signature
from botstream.ingest.platforms.jsonfields import (
    get_bool,
    get_decimal,
    get_dict,
    get_dicts,
    get_id,
    get_str,
    parse_json_object,
)

MAX_BODY_BYTES = 3 * 1024 * 1024  # Meta: "payloads up to 3MB"
RAW_POINTER = "raw_update_id"  # platform_meta of a batch's later Updates: the update id that carries `raw`
MEDIA_TYPES = {"image": "photo", "video": "video", "audio": "audio", "document": "document", "sticker": "sticker"}
OTHER_ATTACHMENT_TYPES = {"location": "location", "contacts": "contact"}
INTERACTIVE_REPLIES = ("button_reply", "list_reply")

ItemNormalizer = Callable[[RequestContext, str, dict[str, Any]], Update | None]


def verify_whatsapp_signature(app_secret: str, body: bytes, signature: str | None) -> None:
    """Raise Unauthorized unless `signature` is `sha256=` HMAC-SHA256(app_secret, body)."""
    verify_hub_signature(app_secret, body, signature)


def subscription_handshake(verify_token: str, query: Mapping[str, str]) -> HandshakeResponse:
    """Meta's GET verification: echo the challenge only to a subscribe request with our verify token."""
    mode, token, challenge = query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
    if mode != "subscribe" or not token or not constant_time_equal(verify_token, token):
        return HandshakeResponse(status=403, body=b"", content_type="text/plain")
    if not challenge:
        raise BadRequest("challenge_missing", "hub.challenge missing")
    return HandshakeResponse(status=200, body=challenge.encode("utf-8", "replace"), content_type="text/plain")


def normalize_whatsapp_notification(ctx: RequestContext, payload: dict[str, Any],
                                    default_phone_number_id: str | None = None) -> list[Update]:
    """One Update per message and per status callback, in the order of the payload."""
    updates: list[Update] = []
    for value in _change_values(payload):
        phone_number_id = get_id(get_dict(value, "metadata"), "phone_number_id") or default_phone_number_id
        if phone_number_id is None:
            continue
        items: list[tuple[ItemNormalizer, dict[str, Any]]] = [
            *((_message_update, message) for message in get_dicts(value, "messages")),
            *((_status_update, status) for status in get_dicts(value, "statuses")),
        ]
        for normalize, item in items:
            try:
                update = normalize(ctx, phone_number_id, item)
            except BadRequest:  # this item only (e.g. a ':' in its ids); see the module docstring
                continue
            if update is not None:
                updates.append(update)
    return updates


def _change_values(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in get_dicts(payload, "entry"):
        for change in get_dicts(entry, "changes"):
            value = get_dict(change, "value")
            if value is not None and get_str(change, "field") in (None, "messages"):
                yield value


def _message_update(ctx: RequestContext, phone_number_id: str, message: dict[str, Any]) -> Update | None:
    message_id, wa_id = get_str(message, "id"), get_id(message, "from")
    if message_id is None or wa_id is None:
        return None
    message_type = get_str(message, "type") or "unknown"
    body = get_dict(message, message_type)
    kind, text, attachments, meta = "other", None, [], {}
    reply_to = get_str(get_dict(message, "context"), "id")
    if message_type == "text":
        text = get_str(body, "body")
        kind = "command" if text is not None and text.startswith("/") else "message"
    elif message_type in MEDIA_TYPES:
        kind, text = "message", get_str(body, "caption")
        media_kind = "voice" if message_type == "audio" and get_bool(body, "voice") else MEDIA_TYPES[message_type]
        attachments = [attachment(media_kind, get_str(body, "mime_type"))]
    elif message_type in OTHER_ATTACHMENT_TYPES:
        kind, attachments = "message", [attachment(OTHER_ATTACHMENT_TYPES[message_type])]
    elif message_type == "interactive":
        reply_type = get_str(body, "type")
        reply = get_dict(body, reply_type) if reply_type in INTERACTIVE_REPLIES else None
        kind = "callback" if reply is not None else "interaction"
        text = get_str(reply, "id")
        meta = compact_meta(reply_title=get_str(reply, "title"), interactive_type=reply_type)
    elif message_type == "button":
        kind, text = "callback", get_str(body, "payload")
        meta = compact_meta(reply_title=get_str(body, "text"))
    elif message_type == "reaction":
        kind, text, reply_to = "reaction", get_str(body, "emoji"), get_str(body, "message_id")
    timestamp = get_decimal(message, "timestamp")
    return ctx.update(
        chat_id=f"{phone_number_id}/{wa_id}", chat_type="private", update_id=message_id, kind=kind,
        user_id=wa_id, text=text, attachments=attachments, reply_to=reply_to,
        platform_ts_ms=timestamp * 1000 if timestamp is not None else None,
        platform_meta={"phone_number_id": phone_number_id, "message_type": message_type, **meta},
    )


def _status_update(ctx: RequestContext, phone_number_id: str, status: dict[str, Any]) -> Update | None:
    message_id, state = get_str(status, "id"), get_str(status, "status")
    recipient = get_id(status, "recipient_id")
    if message_id is None or state is None or recipient is None:
        return None
    error = next(iter(get_dicts(status, "errors")), None)
    timestamp = get_decimal(status, "timestamp")
    return ctx.update(
        chat_id=f"{phone_number_id}/{recipient}", chat_type="private", update_id=f"{message_id}:{state}",
        kind="status", user_id=recipient, reply_to=message_id,
        platform_ts_ms=timestamp * 1000 if timestamp is not None else None,
        platform_meta=compact_meta(phone_number_id=phone_number_id, status=state,
                                   error_code=get_id(error, "code"), error_title=get_str(error, "title")),
    )


class WhatsAppAdapter:
    platform = "whatsapp"
    max_body_bytes: int | None = MAX_BODY_BYTES

    def handle(self, bot: BotConfig, request: WebhookRequest, *, now: float, received_at_ms: int,
               correlation_id: str) -> Outcome:
        check_bot_platform(bot, self.platform)
        check_method(request, ("GET", "POST"))
        if request.method.upper() == "GET":
            return subscription_handshake(bot.secret("verify_token"), request.query)
        check_body_size(len(request.body), self.max_body_bytes)
        verify_whatsapp_signature(bot.secret("app_secret"), request.body, request.headers.get(HUB_SIGNATURE_HEADER))
        check_content_type(request.headers)
        payload = parse_json_object(request.body)
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        phone_number_id = bot.secret("phone_number_id") if "phone_number_id" in bot.credentials else None
        return accepted(raw_once(normalize_whatsapp_notification(ctx, payload, phone_number_id)))


def raw_once(updates: list[Update]) -> list[Update]:
    """The batch's raw body on its first Update only; the others point to it (see the module docstring)."""
    if len(updates) > 1:
        first = updates[0]["update_id"]
        for update in updates[1:]:
            update["raw"] = b""
            update["platform_meta"][RAW_POINTER] = first
    return updates
