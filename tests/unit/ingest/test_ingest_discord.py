"""Discord interactions: Ed25519 verification with a bounded timestamp, PING, deferred responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from botstream.core.bots import BotConfig
from botstream.core.secret import Secret
from botstream.ingest.errors import BadRequest, Unauthorized, UnsupportedMediaType
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import Accepted, HandshakeResponse, Outcome, WebhookRequest
from botstream.ingest.platforms.discord import command_text, snowflake_ms, verify_discord_signature

ADAPTER = ADAPTERS["discord"]
KEY_A, KEY_B = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def bot(bot_id: str, key: Ed25519PrivateKey) -> BotConfig:
    return BotConfig(id=bot_id, platform="discord", api_base_url="", credentials={
        "public_key": key.public_key().public_bytes_raw().hex(), "application_id": "app-cfg",
        "bot_token": Secret("bot-token")})


BOT, OTHER_BOT = bot("dice", KEY_A), bot("other", KEY_B)
NOW = 1_700_000_000.0
INTERACTION_ID = "1180000000000000000"
USER = {"id": "5001", "username": "ann", "global_name": "Ann"}


def post(payload: Any, *, key: Ed25519PrivateKey = KEY_A, timestamp: str = str(int(NOW)),
         signature: str | None = None, content_type: str = "application/json") -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sig = signature if signature is not None else key.sign(timestamp.encode() + body).hex()
    headers = {"content-type": content_type, "x-signature-timestamp": timestamp, "x-signature-ed25519": sig}
    return WebhookRequest(method="POST", path="/webhooks/discord/dice", headers=headers, query={}, body=body)


def handle(request: WebhookRequest, bot_config: BotConfig = BOT) -> Outcome:
    return ADAPTER.handle(bot_config, request, now=NOW, received_at_ms=1_700_000_000_900, correlation_id="c-3")


def interaction(type_: int, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": INTERACTION_ID, "application_id": "app-77", "type": type_, "token": "itok-xyz",
            "version": 1, "locale": "en-US", "channel_id": "900", "guild_id": "800",
            "member": {"user": USER, "roles": []}, **({"data": data} if data else {}), **extra}


def accepted(request: WebhookRequest) -> Accepted:
    outcome = handle(request)
    assert isinstance(outcome, Accepted)
    return outcome


def test_ping_is_answered_with_pong() -> None:
    assert handle(post({"type": 1, "id": "1", "application_id": "app-77"})) == HandshakeResponse(
        200, b'{"type":1}', "application/json")


def test_slash_command_becomes_the_exact_update_and_is_deferred() -> None:
    data = {"id": "c1", "name": "roll", "type": 1, "options": [
        {"name": "sides", "type": 4, "value": 20}, {"name": "secret", "type": 5, "value": True},
        {"name": "label", "type": 3, "value": "for init"}]}
    request = post(interaction(2, data))
    outcome = accepted(request)
    assert (outcome.status, outcome.body, outcome.content_type) == (200, b'{"type":5}', "application/json")
    assert outcome.updates == [{
        "platform": "discord", "bot_id": "dice", "chat_id": "900", "chat_type": "group", "user_id": "5001",
        "update_id": INTERACTION_ID, "kind": "command", "text": "/roll 20 true for init", "attachments": [],
        "reply_to": None, "thread_id": None, "locale": "en-US",
        "platform_ts_ms": (int(INTERACTION_ID) >> 22) + 1420070400000,
        "received_at_ms": 1_700_000_000_900, "correlation_id": "c-3", "from_bot": False,
        "platform_meta": {"interaction_token": "itok-xyz", "application_id": "app-77", "interaction_type": "2",
                          "guild_id": "800", "command_name": "roll"},
        "traceparent": None, "raw": request.body,
    }]


def test_subcommand_groups_and_attachments_in_a_dm() -> None:
    data = {"name": "admin", "options": [{"name": "user", "type": 2, "options": [
        {"name": "ban", "type": 1, "options": [{"name": "who", "type": 6, "value": "42"},
                                               {"name": "proof", "type": 11, "value": "att1"}]}]}],
            "resolved": {"attachments": {"att1": {"id": "att1", "content_type": "image/png", "size": 99}}}}
    payload = interaction(2, data)
    del payload["guild_id"], payload["member"]
    payload["user"] = USER
    update = accepted(post(payload)).updates[0]
    assert update["text"] == "/admin user ban 42 att1"
    assert (update["chat_type"], update["user_id"]) == ("private", "5001")
    assert update["attachments"] == [{"kind": "photo", "mime_type": "image/png", "size": 99}]
    assert "guild_id" not in update["platform_meta"]


def test_button_press_is_a_callback_answered_with_deferred_update() -> None:
    outcome = accepted(post(interaction(3, {"custom_id": "vote:yes", "component_type": 2},
                                        message={"id": "m-1", "content": "vote?"})))
    assert outcome.body == b'{"type":6}'
    update = outcome.updates[0]
    assert (update["kind"], update["text"], update["reply_to"]) == ("callback", "vote:yes", "m-1")
    assert update["platform_meta"]["custom_id"] == "vote:yes"


def test_modal_submit_and_autocomplete_are_interactions() -> None:
    modal = accepted(post(interaction(5, {"custom_id": "form-1", "components": []})))
    assert (modal.body, modal.updates[0]["kind"], modal.updates[0]["text"]) == (b'{"type":5}', "interaction", "form-1")
    auto = accepted(post(interaction(4, {"name": "roll", "options": [{"name": "sides", "type": 4, "value": 6,
                                                                       "focused": True}]})))
    assert auto.body == b'{"type":8,"data":{"choices":[]}}'
    assert (auto.updates[0]["kind"], auto.updates[0]["text"]) == ("interaction", "/roll 6")


def test_thread_channel_and_bot_user() -> None:
    update = accepted(post(interaction(2, {"name": "x"}, channel={"id": "900", "type": 11},
                                       member={"user": {**USER, "bot": True}}))).updates[0]
    assert (update["chat_type"], update["from_bot"]) == ("thread", True)


def test_application_id_falls_back_to_the_bot_config() -> None:
    payload = interaction(2, {"name": "x"})
    del payload["application_id"]
    assert accepted(post(payload)).updates[0]["platform_meta"]["application_id"] == "app-cfg"


def test_interaction_without_channel_is_400() -> None:
    payload = interaction(2, {"name": "x"})
    del payload["channel_id"]
    with pytest.raises(BadRequest) as caught:
        handle(post(payload))
    assert caught.value.reason == "missing_chat_id"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"signature": ""}, "signature_missing"),
    ({"timestamp": ""}, "timestamp_missing"),
    ({"timestamp": "soon"}, "timestamp_malformed"),
    ({"timestamp": str(int(NOW) - 301)}, "timestamp_stale"),
    ({"timestamp": str(int(NOW) + 1000)}, "timestamp_stale"),
    ({"signature": "zz" * 64}, "signature_malformed"),
    ({"signature": "ab" * 63}, "signature_malformed"),
    ({"signature": "00" * 64}, "signature_mismatch"),
    ({"key": KEY_B}, "signature_mismatch"),
])
def test_bad_missing_or_stale_signatures_are_401(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(post({"type": 1}, **kwargs))
    assert (caught.value.status, caught.value.reason) == (401, reason)


def test_signature_over_another_timestamp_is_401() -> None:
    body = b'{"type":1}'
    request = post(body)
    forged = WebhookRequest("POST", request.path, {**request.headers, "x-signature-timestamp": str(int(NOW) + 1)},
                            {}, body)
    with pytest.raises(Unauthorized):
        handle(forged)


def test_signed_for_app_a_checked_as_app_b_is_401() -> None:
    with pytest.raises(Unauthorized):
        handle(post({"type": 1}), OTHER_BOT)


def test_invalid_configured_public_key_refuses_everything() -> None:
    body = b'{"type":1}'
    with pytest.raises(Unauthorized) as caught:
        verify_discord_signature("not-hex", str(int(NOW)), body, KEY_A.sign(str(int(NOW)).encode() + body).hex(), NOW)
    assert caught.value.reason == "public_key_invalid"


def test_malformed_json_and_wrong_content_type() -> None:
    with pytest.raises(BadRequest) as caught:
        handle(post(b'{"type": 1'))
    assert caught.value.reason == "malformed_json"
    with pytest.raises(UnsupportedMediaType):
        handle(post({"type": 1}, content_type="text/html"))


def test_helpers() -> None:
    assert command_text(None) is None
    assert command_text({"name": "x", "options": [{"name": "o", "type": 3, "value": {"nested": 1}}]}) == "/x"
    assert snowflake_ms("0") == 1420070400000
    assert snowflake_ms("18446744073709551616") is None
    assert snowflake_ms("abc") is None
