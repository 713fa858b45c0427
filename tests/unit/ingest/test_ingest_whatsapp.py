"""WhatsApp Cloud API: GET subscription handshake, X-Hub-Signature-256, batched messages and statuses."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from botstream.core.bots import BotConfig
from botstream.core.secret import Secret
from botstream.ingest.errors import (
    BadRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import Accepted, HandshakeResponse, Outcome, WebhookRequest

ADAPTER = ADAPTERS["whatsapp"]


def bot(bot_id: str, app_secret: str) -> BotConfig:
    return BotConfig(id=bot_id, platform="whatsapp", api_base_url="", credentials={
        "app_secret": Secret(app_secret), "verify_token": Secret("verify-me"),
        "access_token": Secret("EAAG"), "phone_number_id": "106540352242922"})


BOT, OTHER_BOT = bot("shop", "app-secret-A"), bot("other", "app-secret-B")
PHONE = "106540352242922"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(payload: Any, *, secret: str = "app-secret-A", signature: str | None = None,
         content_type: str = "application/json") -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": content_type, "x-hub-signature-256": signature if signature is not None
               else sign(secret, body)}
    return WebhookRequest(method="POST", path="/webhooks/whatsapp/shop", headers=headers, query={}, body=body)


def get(query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="GET", path="/webhooks/whatsapp/shop", headers={}, query=query, body=b"")


def handle(request: WebhookRequest, bot_config: BotConfig = BOT) -> Outcome:
    return ADAPTER.handle(bot_config, request, now=0.0, received_at_ms=1_700_000_001_000, correlation_id="c-4")


def accepted(request: WebhookRequest) -> Accepted:
    outcome = handle(request)
    assert isinstance(outcome, Accepted) and (outcome.status, outcome.body) == (200, b"")
    return outcome


def notification(*values: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [
        {"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE}, **value}}]}
        for value in values]}


def text_message(wamid: str, sender: str, body: str, ts: str = "1700000000") -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": ts, "type": "text", "text": {"body": body}}


def test_subscription_handshake() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert handle(get(query)) == HandshakeResponse(200, b"1158201444", "text/plain")
    for bad in ({**query, "hub.verify_token": "nope"}, {**query, "hub.mode": "unsubscribe"},
                {k: v for k, v in query.items() if k != "hub.verify_token"}):
        assert handle(get(bad)) == HandshakeResponse(403, b"", "text/plain")
    with pytest.raises(BadRequest):
        handle(get({k: v for k, v in query.items() if k != "hub.challenge"}))


def test_text_message_becomes_the_exact_update() -> None:
    message = {**text_message("wamid.A1", "4915112345678", "hi there"), "context": {"id": "wamid.PREV"}}
    request = post(notification({"contacts": [{"profile": {"name": "Ann"}, "wa_id": "4915112345678"}],
                                 "messages": [message]}))
    assert accepted(request).updates == [{
        "platform": "whatsapp", "bot_id": "shop", "chat_id": f"{PHONE}/4915112345678", "chat_type": "private",
        "user_id": "4915112345678", "update_id": "wamid.A1", "kind": "message", "text": "hi there",
        "attachments": [], "reply_to": "wamid.PREV", "thread_id": None, "locale": None,
        "platform_ts_ms": 1_700_000_000_000, "received_at_ms": 1_700_000_001_000, "correlation_id": "c-4",
        "from_bot": False, "platform_meta": {"phone_number_id": PHONE, "message_type": "text"},
        "traceparent": None, "raw": request.body,
    }]


def test_multi_entry_post_with_messages_and_statuses_yields_one_update_each() -> None:
    payload = notification(
        {"messages": [text_message("wamid.1", "111", "/help"),
                      {"from": "222", "id": "wamid.2", "timestamp": "1700000001", "type": "image",
                       "image": {"id": "media1", "mime_type": "image/jpeg", "caption": "look"}},
                      {"from": "111", "id": "wamid.3", "timestamp": "1700000002", "type": "interactive",
                       "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
                       "context": {"id": "wamid.Q"}}],
         "statuses": [{"id": "wamid.OUT", "status": "delivered", "timestamp": "1700000003", "recipient_id": "333"}]},
        {"messages": [{"from": "222", "id": "wamid.4", "timestamp": "1700000004", "type": "reaction",
                       "reaction": {"message_id": "wamid.OUT", "emoji": "❤"}}],
         "statuses": [{"id": "wamid.OUT", "status": "failed", "timestamp": "1700000005", "recipient_id": "333",
                       "errors": [{"code": 131047, "title": "Re-engagement message"}]}]},
    )
    request = post(payload)
    updates = accepted(request).updates
    summary = [(u["update_id"], u["kind"], u["chat_id"], u["text"], u["reply_to"]) for u in updates]
    assert summary == [
        ("wamid.1", "command", f"{PHONE}/111", "/help", None),
        ("wamid.2", "message", f"{PHONE}/222", "look", None),
        ("wamid.3", "callback", f"{PHONE}/111", "yes", "wamid.Q"),
        ("wamid.OUT:delivered", "status", f"{PHONE}/333", None, "wamid.OUT"),
        ("wamid.4", "reaction", f"{PHONE}/222", "❤", "wamid.OUT"),
        ("wamid.OUT:failed", "status", f"{PHONE}/333", None, "wamid.OUT"),
    ]
    assert updates[0]["raw"] == request.body and "raw_update_id" not in updates[0]["platform_meta"]
    assert all(u["raw"] == b"" and u["platform_meta"]["raw_update_id"] == "wamid.1" for u in updates[1:])
    assert updates[1]["attachments"] == [{"kind": "photo", "mime_type": "image/jpeg", "size": None}]
    assert updates[2]["platform_meta"]["reply_title"] == "Yes"
    assert updates[5]["platform_meta"] == {"phone_number_id": PHONE, "status": "failed", "error_code": "131047",
                                           "error_title": "Re-engagement message", "raw_update_id": "wamid.1"}


def test_voice_notes_template_buttons_and_unsupported_types() -> None:
    updates = accepted(post(notification({"messages": [
        {"from": "1", "id": "w1", "timestamp": "1", "type": "audio", "audio": {"mime_type": "audio/ogg", "voice": True}},
        {"from": "1", "id": "w2", "timestamp": "1", "type": "button", "button": {"payload": "STOP", "text": "Stop"}},
        {"from": "1", "id": "w3", "timestamp": "1", "type": "unsupported", "errors": [{"code": 131051}]},
        {"from": "1", "id": "w4", "timestamp": "1", "type": "location", "location": {"latitude": 1}},
    ]}))).updates
    assert updates[0]["attachments"] == [{"kind": "voice", "mime_type": "audio/ogg", "size": None}]
    assert (updates[1]["kind"], updates[1]["text"]) == ("callback", "STOP")
    assert updates[2]["kind"] == "other"
    assert (updates[3]["kind"], updates[3]["attachments"][0]["kind"]) == ("message", "location")


def test_unusable_items_are_skipped_without_failing_the_batch() -> None:
    updates = accepted(post(notification({"messages": [
        {"id": "no-sender", "type": "text", "text": {"body": "x"}},
        {"from": "1:2", "id": "colon", "type": "text", "text": {"body": "x"}},
        text_message("wamid.ok", "5", "fine"),
    ], "statuses": [{"id": "s", "status": "read"}]}))).updates
    assert [u["update_id"] for u in updates] == ["wamid.ok"]


@pytest.mark.parametrize("payload", [
    {"object": "whatsapp_business_account", "entry": []},
    notification({"contacts": []}),
    {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [
        {"field": "account_update", "value": {"messages": [text_message("w", "1", "x")]}}]}]},
])
def test_posts_without_messages_or_statuses_are_accepted_empty(payload: dict[str, Any]) -> None:
    assert accepted(post(payload)).updates == []


@pytest.mark.parametrize(("signature", "reason"), [
    ("", "signature_missing"), ("deadbeef", "signature_malformed"),
    ("sha256=" + "0" * 64, "signature_mismatch"), ("sha1=abc", "signature_malformed"),
])
def test_bad_or_missing_signature_is_401(signature: str, reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(post(notification({}), signature=signature))
    assert (caught.value.status, caught.value.reason) == (401, reason)


def test_uppercase_hex_signature_is_accepted() -> None:
    body = json.dumps(notification({})).encode()
    assert accepted(post(body, signature=sign("app-secret-A", body).upper().replace("SHA256=", "sha256="))).updates == []


def test_signed_for_bot_a_checked_as_bot_b_is_401() -> None:
    with pytest.raises(Unauthorized):
        handle(post(notification({})), OTHER_BOT)


def test_malformed_json_wrong_content_type_size_and_method() -> None:
    with pytest.raises(BadRequest):
        handle(post(b'{"entry": ['))
    with pytest.raises(UnsupportedMediaType):
        handle(post(notification({}), content_type="text/plain"))
    assert ADAPTER.max_body_bytes == 3 * 1024 * 1024
    with pytest.raises(PayloadTooLarge) as caught:
        handle(post(b" " * (3 * 1024 * 1024 + 1)))
    assert caught.value.status == 413
    with pytest.raises(MethodNotAllowed):
        handle(WebhookRequest("PUT", "/", {}, {}, b""))
