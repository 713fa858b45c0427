"""Slack interactivity: slash commands, block_actions, view_submission and shortcuts arrive
form-encoded, signed like the Events API over the raw form body, and become command / callback
Updates whose dedupe id is the signed trigger_id and whose response_url travels with the replies."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from botstream.core.bots import BotConfig
from botstream.core.secret import Secret
from botstream.ingest.errors import BadRequest, Unauthorized
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import Accepted, Outcome, WebhookRequest
from botstream.schemas.records import REPLY_META_KEYS

ADAPTER = ADAPTERS["slack"]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT = BotConfig(id="faq", platform="slack", api_base_url="",
                credentials={"signing_secret": Secret(SECRET), "bot_token": Secret("xoxb-1")})
NOW = 1_700_000_000.0
RESPONSE_URL = "https://hooks.slack.com/commands/T0001/1234567890/abcdefABCDEF"
FORM = "application/x-www-form-urlencoded"


def sign(timestamp: str, body: bytes, secret: str = SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def form_post(fields: dict[str, str], *, secret: str = SECRET, timestamp: str = str(int(NOW)),
              extra: dict[str, str] | None = None, content_type: str = FORM) -> WebhookRequest:
    body = urlencode(fields).encode()
    headers = {"content-type": content_type, "x-slack-request-timestamp": timestamp,
               "x-slack-signature": sign(timestamp, body, secret), **(extra or {})}
    return WebhookRequest(method="POST", path="/webhooks/slack/faq", headers=headers, query={}, body=body)


def handle(request: WebhookRequest, now: float = NOW) -> Outcome:
    return ADAPTER.handle(BOT, request, now=now, received_at_ms=1, correlation_id="c-1")


def only_update(request: WebhookRequest) -> dict[str, Any]:
    outcome = handle(request)
    assert isinstance(outcome, Accepted) and (outcome.status, outcome.body) == (200, b"")
    [update] = outcome.updates
    return update


def slash(text: str = "what is botstream?", **extra: str) -> dict[str, str]:
    return {"token": "deprecated", "team_id": "T0001", "team_domain": "example", "channel_id": "C2147483705",
            "channel_name": "test", "user_id": "U2147483697", "user_name": "Steve", "command": "/ask",
            "text": text, "api_app_id": "A123", "response_url": RESPONSE_URL,
            "trigger_id": "13345224609.738474920.8088930838d88f008e0", **extra}


def interaction(payload: dict[str, Any]) -> dict[str, str]:
    return {"payload": json.dumps(payload)}


def test_slash_command_is_a_command_update_with_its_response_url() -> None:
    request = form_post(slash())
    update = only_update(request)
    assert (update["kind"], update["text"], update["chat_id"], update["chat_type"]) == (
        "command", "/ask what is botstream?", "T0001/C2147483705", "group")
    assert (update["update_id"], update["user_id"], update["raw"]) == (
        "13345224609.738474920.8088930838d88f008e0", "U2147483697", request.body)
    meta = update["platform_meta"]
    assert (meta["event_type"], meta["command"], meta["response_url"]) == ("slash_command", "/ask", RESPONSE_URL)
    assert "response_url" in REPLY_META_KEYS  # the reply can answer through it


def test_slash_command_without_text_and_in_a_dm() -> None:
    update = only_update(form_post(slash(text="", channel_id="D024BE91L")))
    assert (update["text"], update["chat_type"]) == ("/ask", "private")


def test_block_actions_button_is_a_callback_on_its_message() -> None:
    update = only_update(form_post(interaction({
        "type": "block_actions", "team": {"id": "T0001", "domain": "x"}, "user": {"id": "U1", "team_id": "T0001"},
        "api_app_id": "A123", "trigger_id": "111.222.btn", "response_url": "https://hooks.slack.com/actions/T0001/9/x",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C9"},
        "channel": {"id": "C9", "name": "general"}, "message": {"ts": "1700000000.000100", "text": "pick"},
        "actions": [{"action_id": "approve", "block_id": "b1", "value": "yes", "type": "button",
                     "action_ts": "1700000005.123456"}]})))
    assert (update["kind"], update["text"], update["chat_id"], update["reply_to"]) == (
        "callback", "yes", "T0001/C9", "1700000000.000100")
    assert (update["update_id"], update["platform_ts_ms"]) == ("111.222.btn", 1_700_000_005_123)
    meta = update["platform_meta"]
    assert (meta["event_type"], meta["action_id"], meta["block_id"]) == ("block_actions", "approve", "b1")
    assert meta["response_url"] == "https://hooks.slack.com/actions/T0001/9/x"


def test_select_menu_value_and_a_home_tab_action_without_channel() -> None:
    update = only_update(form_post(interaction({
        "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U7"}, "trigger_id": "t.sel",
        "container": {"type": "view", "view_id": "V1"}, "view": {"id": "V1", "callback_id": "home"},
        "actions": [{"action_id": "pick", "type": "static_select", "selected_option": {"value": "opt-2"}}]})))
    assert (update["text"], update["chat_id"], update["chat_type"]) == ("opt-2", "T0001/U7", "private")


def test_view_submission_carries_its_values() -> None:
    values = {"q": {"question": {"type": "plain_text_input", "value": "how?"}}}
    update = only_update(form_post(interaction({
        "type": "view_submission", "team": {"id": "T0001"}, "user": {"id": "U7"}, "trigger_id": "t.view",
        "view": {"id": "V2", "callback_id": "ask_modal", "private_metadata": "C9", "state": {"values": values}},
        "response_urls": [{"block_id": "q", "action_id": "question", "channel_id": "C9",
                           "response_url": "https://hooks.slack.com/app/T0001/5/z"}]})))
    assert (update["kind"], update["text"], update["chat_id"]) == ("callback", "ask_modal", "T0001/C9")
    meta = update["platform_meta"]
    assert json.loads(meta["view_state"]) == values
    assert (meta["view_id"], meta["private_metadata"], meta["response_url"]) == (
        "V2", "C9", "https://hooks.slack.com/app/T0001/5/z")


@pytest.mark.parametrize(("payload", "chat"), [
    ({"type": "shortcut", "callback_id": "new_ticket", "trigger_id": "t.sc", "team": {"id": "T0001"},
      "user": {"id": "U7"}}, "T0001/U7"),
    ({"type": "message_action", "callback_id": "new_ticket", "trigger_id": "t.ma", "team": {"id": "T0001"},
      "user": {"id": "U7"}, "channel": {"id": "C1111"}, "message": {"ts": "1.2"},
      "response_url": "https://hooks.slack.com/app/T0001/1/x"}, "T0001/C1111"),
])
def test_shortcuts_are_callbacks_named_by_callback_id(payload: dict[str, Any], chat: str) -> None:
    update = only_update(form_post(interaction(payload)))
    assert (update["kind"], update["text"], update["chat_id"]) == ("callback", "new_ticket", chat)


@pytest.mark.parametrize("fields", [
    {"ssl_check": "1", "token": "x"},
    interaction({"type": "view_closed", "team": {"id": "T"}, "user": {"id": "U"}}),
    interaction({"type": "block_suggestion", "team": {"id": "T"}, "user": {"id": "U"}, "value": "ab"}),
])
def test_other_forms_are_verified_and_ignored(fields: dict[str, str]) -> None:
    outcome = handle(form_post(fields))
    assert isinstance(outcome, Accepted) and outcome.updates == []


@pytest.mark.parametrize(("fields", "reason"), [
    (slash(trigger_id=""), "missing_update_id"),
    (slash(channel_id=""), "missing_chat_id"),
    ({"payload": "{not json"}, "malformed_json"),
    ({"payload": "[1]"}, "json_not_object"),
    (interaction({"type": "block_actions", "team": {"id": "T"}, "user": {"id": "U"}}), "missing_update_id"),
    (slash(channel_id="C:1"), "invalid_chat_id"),
])
def test_bad_forms_after_a_valid_signature_are_400(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        handle(form_post(fields))
    assert caught.value.reason == reason


def test_a_body_that_is_not_a_form_is_400() -> None:
    body = b"\xff\xfe=="
    request = WebhookRequest("POST", "/webhooks/slack/faq", {
        "content-type": FORM, "x-slack-request-timestamp": str(int(NOW)),
        "x-slack-signature": sign(str(int(NOW)), body)}, {}, body)
    with pytest.raises(BadRequest) as caught:
        handle(request)
    assert caught.value.reason == "malformed_form"


def test_form_bodies_are_signed_like_events() -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(form_post(slash(), secret="not-the-secret"))
    assert caught.value.reason == "signature_mismatch"
    with pytest.raises(Unauthorized) as caught:
        handle(form_post(slash()), now=NOW + 301)
    assert caught.value.reason == "timestamp_stale"
    good = form_post(slash())
    tampered = WebhookRequest(good.method, good.path, good.headers, {}, good.body.replace(b"ask", b"del"))
    with pytest.raises(Unauthorized):
        handle(tampered)


def test_a_replayed_slash_command_with_new_unsigned_headers_is_one_update_id() -> None:
    request = form_post(slash())
    ids = {only_update(WebhookRequest(request.method, request.path, {**request.headers, **extra}, {}, request.body))
           ["update_id"] for extra in ({}, {"x-request-id": "r2"}, {"x-slack-retry-num": "1"})}
    assert ids == {"13345224609.738474920.8088930838d88f008e0"}


def test_form_content_type_with_charset_parameter() -> None:
    update = only_update(form_post(slash(), content_type="application/x-www-form-urlencoded; charset=utf-8"))
    assert update["kind"] == "command"
