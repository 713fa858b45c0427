"""Telegram webhooks: secret-token check, and normalization of each mapped update type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from botstream.core.bots import BotConfig
from botstream.core.secret import Secret
from botstream.ingest.errors import BadRequest, MethodNotAllowed, NotFound, Unauthorized, UnsupportedMediaType
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import Accepted, WebhookRequest
from botstream.ingest.platforms.telegram import verify_telegram_secret_token

ADAPTER = ADAPTERS["telegram"]
BOT = BotConfig(id="echo", platform="telegram", api_base_url="",
                credentials={"secret_token": Secret("tok-A_1"), "token": Secret("123:abc")})
OTHER_BOT = BotConfig(id="other", platform="telegram", api_base_url="",
                      credentials={"secret_token": Secret("tok-B_2"), "token": Secret("456:def")})
NOW = 1_700_000_000.0
USER = {"id": 111, "is_bot": False, "first_name": "Ann", "language_code": "de"}
PRIVATE = {"id": 111, "type": "private", "first_name": "Ann"}
SUPERGROUP = {"id": -1001234567890, "type": "supergroup", "title": "Team"}


def post(payload: Any, token: str | None = "tok-A_1", content_type: str | None = "application/json",
         method: str = "POST") -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {}
    if token is not None:
        headers["x-telegram-bot-api-secret-token"] = token
    if content_type is not None:
        headers["content-type"] = content_type
    return WebhookRequest(method=method, path="/webhooks/telegram/echo", headers=headers, query={}, body=body)


def handle(request: WebhookRequest, bot: BotConfig = BOT) -> Accepted:
    outcome = ADAPTER.handle(bot, request, now=NOW, received_at_ms=1_700_000_000_123, correlation_id="c-1")
    assert isinstance(outcome, Accepted)
    return outcome


def only_update(payload: dict[str, Any]) -> dict[str, Any]:
    outcome = handle(post(payload))
    assert (outcome.status, outcome.body) == (200, b"")
    assert len(outcome.updates) == 1
    return outcome.updates[0]


def test_private_text_message_becomes_the_exact_update() -> None:
    payload = {"update_id": 9001, "message": {"message_id": 5, "from": USER, "chat": PRIVATE,
                                              "date": 1_699_999_990, "text": "hello"}}
    request = post(payload)
    assert handle(request).updates == [{
        "platform": "telegram", "bot_id": "echo", "chat_id": "111", "chat_type": "private", "user_id": "111",
        "update_id": "9001", "kind": "message", "text": "hello", "attachments": [], "reply_to": None,
        "thread_id": None, "locale": "de", "platform_ts_ms": 1_699_999_990_000,
        "received_at_ms": 1_700_000_000_123, "correlation_id": "c-1", "from_bot": False,
        "platform_meta": {"update_type": "message", "message_id": "5"}, "traceparent": None,
        "raw": request.body,
    }]


def test_command_in_a_supergroup_keeps_the_negative_chat_id() -> None:
    update = only_update({"update_id": 1, "message": {
        "message_id": 7, "from": USER, "chat": SUPERGROUP, "date": 1, "text": "/start@echo_bot now",
        "message_thread_id": 42, "reply_to_message": {"message_id": 6, "chat": SUPERGROUP, "date": 0}}})
    assert update["kind"] == "command"
    assert (update["chat_id"], update["chat_type"]) == ("-1001234567890", "supergroup")
    assert (update["thread_id"], update["reply_to"]) == ("42", "6")


@pytest.mark.parametrize(("chat_type", "expected"), [("group", "group"), ("channel", "channel"), ("weird", "unknown")])
def test_chat_type_comes_from_chat_type(chat_type: str, expected: str) -> None:
    update = only_update({"update_id": 1, "message": {"message_id": 1, "date": 1, "text": "x",
                                                      "chat": {"id": -5, "type": chat_type}}})
    assert (update["chat_id"], update["chat_type"]) == ("-5", expected)


def test_slash_in_a_caption_is_not_a_command() -> None:
    update = only_update({"update_id": 1, "message": {
        "message_id": 1, "date": 1, "chat": PRIVATE, "caption": "/not a command",
        "photo": [{"file_id": "s", "file_size": 10}, {"file_id": "l", "file_size": 900}]}})
    assert (update["kind"], update["text"]) == ("message", "/not a command")
    assert update["attachments"] == [{"kind": "photo", "mime_type": None, "size": 900}]


def test_attachments_are_summarized_without_duplicates() -> None:
    update = only_update({"update_id": 1, "message": {
        "message_id": 1, "date": 1, "chat": PRIVATE,
        "animation": {"file_id": "a", "mime_type": "video/mp4", "file_size": 5},
        "document": {"file_id": "a", "mime_type": "video/mp4", "file_size": 5},
        "voice": {"file_id": "v", "mime_type": "audio/ogg", "file_size": 7},
        "venue": {"title": "x"}, "location": {"latitude": 1, "longitude": 2}}})
    assert update["attachments"] == [
        {"kind": "animation", "mime_type": "video/mp4", "size": 5},
        {"kind": "voice", "mime_type": "audio/ogg", "size": 7},
        {"kind": "venue", "mime_type": None, "size": None},
    ]


def test_edited_message_is_an_edit_even_with_a_slash() -> None:
    update = only_update({"update_id": 2, "edited_message": {
        "message_id": 5, "from": USER, "chat": PRIVATE, "date": 10, "edit_date": 20, "text": "/fixed"}})
    assert (update["kind"], update["text"], update["platform_ts_ms"]) == ("edit", "/fixed", 10_000)
    assert update["platform_meta"] == {"update_type": "edited_message", "message_id": "5"}


def test_channel_post_has_no_user() -> None:
    update = only_update({"update_id": 3, "channel_post": {
        "message_id": 1, "date": 1, "chat": {"id": -100777, "type": "channel"}, "text": "news"}})
    assert (update["kind"], update["chat_type"], update["user_id"]) == ("message", "channel", None)


def test_callback_query_takes_the_chat_of_its_message() -> None:
    update = only_update({"update_id": 4, "callback_query": {
        "id": "cq-1", "from": USER, "chat_instance": "x", "data": "vote:yes",
        "message": {"message_id": 77, "chat": SUPERGROUP, "date": 1}}})
    assert (update["kind"], update["text"], update["reply_to"]) == ("callback", "vote:yes", "77")
    assert (update["chat_id"], update["user_id"]) == ("-1001234567890", "111")
    assert update["platform_meta"] == {"update_type": "callback_query", "callback_query_id": "cq-1"}


def test_inline_callback_without_message_is_keyed_by_the_user() -> None:
    update = only_update({"update_id": 4, "callback_query": {
        "id": "cq-2", "from": USER, "inline_message_id": "im-9", "data": "d"}})
    assert (update["chat_id"], update["chat_type"]) == ("111", "unknown")
    assert update["platform_meta"]["inline_message_id"] == "im-9"


@pytest.mark.parametrize("field", ["my_chat_member", "chat_member"])
def test_member_updates(field: str) -> None:
    update = only_update({"update_id": 5, field: {
        "chat": SUPERGROUP, "from": USER, "date": 3,
        "old_chat_member": {"status": "left", "user": USER}, "new_chat_member": {"status": "member", "user": USER}}})
    assert (update["kind"], update["user_id"], update["platform_ts_ms"]) == ("member", "111", 3000)
    assert update["platform_meta"] == {"update_type": field, "old_status": "left", "new_status": "member"}


def test_message_reaction() -> None:
    update = only_update({"update_id": 6, "message_reaction": {
        "chat": PRIVATE, "message_id": 12, "user": USER, "date": 4, "old_reaction": [],
        "new_reaction": [{"type": "emoji", "emoji": "👍"}, {"type": "custom_emoji", "custom_emoji_id": "1"}]}})
    assert (update["kind"], update["text"], update["reply_to"]) == ("reaction", "👍", "12")


def test_message_from_a_bot_is_flagged() -> None:
    update = only_update({"update_id": 7, "message": {
        "message_id": 1, "date": 1, "chat": SUPERGROUP, "text": "beep", "from": {"id": 9, "is_bot": True}}})
    assert update["from_bot"] is True


def test_unmapped_update_types_are_accepted_and_ignored() -> None:
    outcome = handle(post({"update_id": 8, "inline_query": {"id": "q", "from": USER, "query": "x", "offset": ""}}))
    assert (outcome.updates, outcome.status) == ([], 200)


def test_verify_secret_token_directly() -> None:
    verify_telegram_secret_token("abc", "abc")
    with pytest.raises(Unauthorized) as caught:
        verify_telegram_secret_token("abc", "abd")
    assert caught.value.reason == "signature_mismatch"


@pytest.mark.parametrize(("token", "reason"), [(None, "signature_missing"), ("", "signature_missing"),
                                               ("tok-A_", "signature_mismatch"), ("ünïcode", "signature_mismatch")])
def test_missing_or_wrong_secret_token_is_401(token: str | None, reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(post({"update_id": 1}, token=token))
    assert (caught.value.status, caught.value.reason) == (401, reason)
    assert "tok-A_1" not in str(caught.value)


def test_token_of_bot_a_does_not_open_bot_b() -> None:
    with pytest.raises(Unauthorized):
        handle(post({"update_id": 1}, token="tok-A_1"), bot=OTHER_BOT)


@pytest.mark.parametrize(("body", "reason"), [(b"{not json", "malformed_json"), (b"[1, 2]", "json_not_object"),
                                              (b"\xff\xfe\xfa", "malformed_json"), (b"", "malformed_json")])
def test_malformed_body_after_a_valid_token_is_400(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        handle(post(body))
    assert (caught.value.status, caught.value.reason) == (400, reason)


def test_update_without_update_id_or_chat_is_400() -> None:
    with pytest.raises(BadRequest, match="update_id"):
        handle(post({"message": {"chat": PRIVATE}}))
    with pytest.raises(BadRequest) as caught:
        handle(post({"update_id": 1, "message": {"text": "hi"}}))
    assert caught.value.reason == "missing_chat_id"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        handle(post({"update_id": 1}, content_type=content_type))
    assert caught.value.status == 415


def test_json_with_charset_is_fine() -> None:
    assert handle(post({"update_id": 1}, content_type="Application/JSON; charset=utf-8")).updates == []


def test_get_is_405_and_a_bot_of_another_platform_is_404() -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        handle(post({"update_id": 1}, method="GET"))
    assert (caught.value.status, caught.value.allowed) == (405, ("POST",))
    slack_bot = BotConfig(id="echo", platform="slack", api_base_url="", credentials={"secret_token": Secret("x")})
    with pytest.raises(NotFound):
        handle(post({"update_id": 1}), bot=slack_bot)
