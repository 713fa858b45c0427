"""Slack Events API: v0 signatures with a replay window, url_verification, message normalization."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from botstream.core.bots import BotConfig
from botstream.core.secret import Secret
from botstream.ingest.errors import BadRequest, Unauthorized, UnsupportedMediaType
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import Accepted, HandshakeResponse, Outcome, WebhookRequest
from botstream.ingest.platforms.slack import slack_signature, slack_ts_ms, verify_slack_signature

ADAPTER = ADAPTERS["slack"]
SECRET_A, SECRET_B = "8f742231b10e8888abcd99yyyzzz85a5", "another-signing-secret"
BOT = BotConfig(id="helper", platform="slack", api_base_url="",
                credentials={"signing_secret": Secret(SECRET_A), "bot_token": Secret("xoxb-1")})
OTHER_BOT = BotConfig(id="other", platform="slack", api_base_url="",
                      credentials={"signing_secret": Secret(SECRET_B), "bot_token": Secret("xoxb-2")})
NOW = 1_700_000_000.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Independent of the code under test: Slack's documented recipe."""
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def post(payload: Any, *, secret: str = SECRET_A, timestamp: str | None = str(int(NOW)),
         signature: str | None = None, extra: dict[str, str] | None = None,
         content_type: str = "application/json") -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": content_type, **(extra or {})}
    if timestamp is not None:
        headers["x-slack-request-timestamp"] = timestamp
        headers["x-slack-signature"] = signature if signature is not None else sign(secret, timestamp, body)
    return WebhookRequest(method="POST", path="/webhooks/slack/helper", headers=headers, query={}, body=body)


def handle(request: WebhookRequest, bot: BotConfig = BOT) -> Outcome:
    return ADAPTER.handle(bot, request, now=NOW, received_at_ms=1_700_000_000_500, correlation_id="c-2")


def envelope(event: dict[str, Any], event_id: str = "Ev0001") -> dict[str, Any]:
    return {"token": "x", "team_id": "T111", "api_app_id": "A222", "type": "event_callback",
            "event_id": event_id, "event_time": 1_699_999_999, "event": event}


def only_update(payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    outcome = handle(post(payload, **kwargs))
    assert isinstance(outcome, Accepted) and (outcome.status, outcome.body) == (200, b"")
    assert len(outcome.updates) == 1
    return outcome.updates[0]


def test_slack_documented_signature_vector() -> None:
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert slack_signature(SECRET_A, "1531420618", body) == expected
    verify_slack_signature(SECRET_A, "1531420618", body, expected, now=1531420618 + 299)


def test_channel_message_becomes_the_exact_update() -> None:
    event = {"type": "message", "channel": "C123", "channel_type": "channel", "user": "U9",
             "text": "/deploy now", "ts": "1699999999.000200", "thread_ts": "1699999000.000100",
             "files": [{"mimetype": "image/png", "size": 2048}]}
    request = post(envelope(event), extra={"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"})
    outcome = handle(request)
    assert isinstance(outcome, Accepted)
    assert outcome.updates == [{
        "platform": "slack", "bot_id": "helper", "chat_id": "T111/C123", "chat_type": "group", "user_id": "U9",
        "update_id": "Ev0001", "kind": "message", "text": "/deploy now",
        "attachments": [{"kind": "photo", "mime_type": "image/png", "size": 2048}], "reply_to": None,
        "thread_id": "1699999000.000100", "locale": None, "platform_ts_ms": 1_699_999_999_000,
        "received_at_ms": 1_700_000_000_500, "correlation_id": "c-2", "from_bot": False,
        "platform_meta": {"event_type": "message", "team_id": "T111", "channel": "C123",
                          "message_ts": "1699999999.000200", "api_app_id": "A222", "retry_num": "1",
                          "retry_reason": "http_timeout"},
        "traceparent": None, "raw": request.body,
    }]


def test_app_mention_is_a_message_typed_by_channel_prefix() -> None:
    update = only_update(envelope({"type": "app_mention", "channel": "D42", "user": "U1", "text": "<@U0> hi",
                                   "ts": "1.5"}))
    assert (update["kind"], update["chat_type"], update["chat_id"]) == ("message", "private", "T111/D42")
    assert update["platform_ts_ms"] == 1500


@pytest.mark.parametrize("event", [
    {"type": "message", "subtype": "bot_message", "bot_id": "B1", "channel": "C1", "text": "beep", "ts": "1.0"},
    {"type": "message", "bot_id": "B1", "user": "U5", "channel": "C1", "text": "beep", "ts": "1.0"},
])
def test_bot_authored_events_are_flagged(event: dict[str, Any]) -> None:
    update = only_update(envelope(event))
    assert update["from_bot"] is True
    assert update["platform_meta"]["bot_id"] == "B1"


def test_message_changed_is_an_edit_of_the_inner_message() -> None:
    update = only_update(envelope({"type": "message", "subtype": "message_changed", "channel": "G7",
                                   "channel_type": "im", "ts": "2.0",
                                   "message": {"user": "U3", "text": "fixed", "ts": "1.0"}}))
    assert (update["kind"], update["text"], update["user_id"], update["chat_type"]) == ("edit", "fixed", "U3", "private")
    assert update["platform_meta"]["message_ts"] == "1.0"


def test_url_verification_echoes_the_challenge() -> None:
    outcome = handle(post({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                           "type": "url_verification"}))
    assert outcome == HandshakeResponse(200, b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "text/plain")


@pytest.mark.parametrize("payload", [
    envelope({"type": "reaction_added", "user": "U1", "reaction": "+1", "item": {"channel": "C1"}}),
    {"type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1},
    {"type": "event_callback", "event_id": "Ev9", "team_id": "T1"},
])
def test_non_message_events_are_accepted_and_ignored(payload: dict[str, Any]) -> None:
    outcome = handle(post(payload))
    assert isinstance(outcome, Accepted) and (outcome.updates, outcome.status) == ([], 200)


def test_message_event_without_event_id_or_channel_is_400() -> None:
    payload = envelope({"type": "message", "channel": "C1", "text": "x", "ts": "1.0"})
    del payload["event_id"]
    with pytest.raises(BadRequest, match="event_id"):
        handle(post(payload))
    with pytest.raises(BadRequest) as caught:
        handle(post(envelope({"type": "message", "text": "x", "ts": "1.0"})))
    assert caught.value.reason == "missing_chat_id"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"timestamp": None}, "signature_missing"),
    ({"signature": ""}, "signature_missing"),
    ({"signature": "v0=" + "0" * 64}, "signature_mismatch"),
    ({"signature": "garbage"}, "signature_mismatch"),
    ({"timestamp": str(int(NOW) - 301)}, "timestamp_stale"),
    ({"timestamp": str(int(NOW) + 301)}, "timestamp_stale"),
    ({"timestamp": "17e8"}, "timestamp_malformed"),
    ({"timestamp": "１７００"}, "timestamp_malformed"),
])
def test_bad_missing_or_stale_signatures_are_401(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(post(envelope({"type": "message", "channel": "C1"}), **kwargs))
    assert (caught.value.status, caught.value.reason) == (401, reason)
    assert SECRET_A not in str(caught.value)


def test_timestamp_header_missing_while_signature_present() -> None:
    request = post(envelope({"type": "message"}))
    headers = {k: v for k, v in request.headers.items() if k != "x-slack-request-timestamp"}
    with pytest.raises(Unauthorized) as caught:
        handle(WebhookRequest("POST", request.path, headers, {}, request.body))
    assert caught.value.reason == "timestamp_missing"


def test_edge_of_the_replay_window_is_accepted() -> None:
    assert only_update(envelope({"type": "message", "channel": "C1", "ts": "1.0"}),
                       timestamp=str(int(NOW) - 300))["update_id"] == "Ev0001"


def test_signed_by_bot_a_checked_as_bot_b_is_401() -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(post(envelope({"type": "message", "channel": "C1"})), bot=OTHER_BOT)
    assert caught.value.reason == "signature_mismatch"


def test_tampered_body_is_401() -> None:
    request = post(envelope({"type": "message", "channel": "C1", "text": "a"}))
    tampered = WebhookRequest("POST", request.path, request.headers, {}, request.body.replace(b'"a"', b'"b"'))
    with pytest.raises(Unauthorized):
        handle(tampered)


def test_malformed_json_and_wrong_content_type() -> None:
    with pytest.raises(BadRequest) as caught:
        handle(post(b'{"type": "event_callback",'))
    assert caught.value.reason == "malformed_json"
    with pytest.raises(UnsupportedMediaType):
        handle(post(b"payload=%7B%7D", content_type="text/plain"))
    with pytest.raises(UnsupportedMediaType):
        handle(post(b"payload=%7B%7D", content_type=""))


def test_a_colon_in_team_or_channel_cannot_break_the_chat_key() -> None:
    payload = envelope({"type": "message", "channel": "C:1", "ts": "1.0"})
    with pytest.raises(BadRequest) as caught:
        handle(post(payload))
    assert caught.value.reason == "invalid_chat_id"


@pytest.mark.parametrize(("ts", "ms"), [("1355517523.000005", 1355517523000), ("1.9999", 1999), ("7", 7000),
                                        ("x", None), (None, None), ("1.2.3", None)])
def test_slack_ts_in_ms(ts: str | None, ms: int | None) -> None:
    assert slack_ts_ms(ts) == ms
