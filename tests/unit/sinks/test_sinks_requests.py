"""Request building per platform: URL, method, headers and body of the call a reply becomes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sinks_factories import make_bot, make_reply

from botstream.sinks.errors import InvalidReply, MissingCredential, UnsupportedReply
from botstream.sinks.platforms import TEXT_LIMITS, adapter_for, discord, generic, slack, telegram, whatsapp
from botstream.sinks.platforms.base import HEADER_REQUEST_ID, HEADER_SEQ


@pytest.mark.parametrize("platform", ["telegram", "slack", "discord", "whatsapp", "generic"])
def test_every_request_carries_seq_and_request_id(platform: str) -> None:
    reply = make_reply(platform, chat_seq=31, correlation_id="corr-9", traceparent="00-abc-def-01")
    request = adapter_for(platform).build_request(make_bot(platform), reply)
    assert request.headers[HEADER_SEQ] == "31"
    assert request.headers[HEADER_REQUEST_ID] == "corr-9"
    assert request.headers["traceparent"] == "00-abc-def-01"
    assert json.loads(request.content) == request.json


def test_text_limits() -> None:
    assert TEXT_LIMITS == {"telegram": 4096, "slack": 40_000, "discord": 2000, "whatsapp": 4096, "generic": 4096}


class TestTelegram:
    def test_send_message(self) -> None:
        reply = make_reply(chat_id="-1001234", text="hi", reply_to="55", thread_id="3",
                           options={"parse_mode": "HTML", "disable_notification": "true", "bogus": "x"},
                           markup='{"inline_keyboard": [[{"text": "ok", "callback_data": "1"}]]}')
        request = telegram.build_request(make_bot("telegram"), reply)
        assert (request.method, request.url) == ("POST", "https://api.telegram.org/bot123:ABC/sendMessage")
        assert request.json == {
            "chat_id": -1001234, "text": "hi", "message_thread_id": 3,
            "reply_parameters": {"message_id": 55, "allow_sending_without_reply": True},
            "reply_markup": {"inline_keyboard": [[{"text": "ok", "callback_data": "1"}]]},
            "parse_mode": "HTML", "disable_notification": True,
        }

    def test_custom_base_url_and_username_chat(self) -> None:
        bot = make_bot("telegram", api_base_url="http://127.0.0.1:8090")
        request = telegram.build_request(bot, make_reply(chat_id="@news"))
        assert request.url == "http://127.0.0.1:8090/bot123:ABC/sendMessage"
        assert request.json["chat_id"] == "@news"

    def test_edit(self) -> None:
        request = telegram.build_request(make_bot(), make_reply(kind="edit", target_message_id="99", text="v2"))
        assert request.url.endswith("/editMessageText")
        assert request.json == {"chat_id": 42, "message_id": 99, "text": "v2"}

    def test_edit_without_target_is_invalid(self) -> None:
        with pytest.raises(InvalidReply, match="target_message_id"):
            telegram.build_request(make_bot(), make_reply(kind="edit"))

    def test_typing(self) -> None:
        request = telegram.build_request(make_bot(), make_reply(kind="typing", text=None, thread_id="8"))
        assert request.url.endswith("/sendChatAction")
        assert request.json == {"chat_id": 42, "action": "typing", "message_thread_id": 8}

    def test_token_never_in_repr(self) -> None:
        request = telegram.build_request(make_bot(), make_reply())
        assert "123:ABC" not in repr(request)
        assert "123:ABC" not in request.describe()
        assert request.describe() == "POST https://api.telegram.org/bot**********/sendMessage"

    def test_missing_credential(self) -> None:
        bot = make_bot()
        bot = type(bot)(id=bot.id, platform=bot.platform, credentials={}, api_base_url=bot.api_base_url)
        with pytest.raises(MissingCredential, match="token"):
            telegram.build_request(bot, make_reply())

    def test_reply_of_another_platform_is_refused(self) -> None:
        with pytest.raises(InvalidReply):
            telegram.build_request(make_bot(), make_reply("slack"))


class TestSlack:
    def test_post_message(self) -> None:
        reply = make_reply("slack", thread_id="1700000000.000100", reply_to="1700000000.000050",
                           options={"unfurl_links": "false"})
        request = slack.build_request(make_bot("slack"), reply)
        assert (request.method, request.url) == ("POST", "https://slack.com/api/chat.postMessage")
        assert request.headers["Authorization"] == "Bearer xoxb-1"
        assert request.headers["Content-Type"] == "application/json; charset=utf-8"
        assert request.json == {"channel": "C2", "text": "hello", "thread_ts": "1700000000.000100",
                                "unfurl_links": False}

    def test_blocks_keep_text_as_fallback(self) -> None:
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
        request = slack.build_request(make_bot("slack"), make_reply("slack", markup=json.dumps(blocks)))
        assert request.json == {"channel": "C2", "text": "hello", "blocks": blocks}

    def test_edit_is_chat_update(self) -> None:
        request = slack.build_request(make_bot("slack"), make_reply("slack", kind="edit", target_message_id="17.1"))
        assert request.url == "https://slack.com/api/chat.update"
        assert request.json == {"channel": "C2", "ts": "17.1", "text": "hello"}

    def test_typing_is_unsupported(self) -> None:
        with pytest.raises(UnsupportedReply):
            slack.build_request(make_bot("slack"), make_reply("slack", kind="typing", text=None))

    def test_chat_id_without_team_is_invalid(self) -> None:
        with pytest.raises(InvalidReply, match="team_id"):
            slack.build_request(make_bot("slack"), make_reply("slack", chat_id="C2"))


class TestDiscord:
    def test_channel_message(self) -> None:
        request = discord.build_request(make_bot("discord"), make_reply("discord", reply_id="r-1", reply_to="77"))
        assert (request.method, request.url) == ("POST", "https://discord.com/api/v10/channels/1100/messages")
        assert request.headers["Authorization"] == "Bot dtok"
        assert request.json == {"content": "hello", "nonce": "r-1", "enforce_nonce": True,
                                "message_reference": {"message_id": "77", "fail_if_not_exists": False}}

    def test_long_reply_id_gives_a_stable_25_char_nonce(self) -> None:
        reply_id = "telegram:b1:-1001234567890:update-123456789:0"
        nonce = discord.build_request(make_bot("discord"), make_reply("discord", reply_id=reply_id)).json["nonce"]
        assert len(nonce) == 25
        assert nonce == hashlib.sha256(reply_id.encode()).hexdigest()[:25]
        assert discord.discord_nonce(reply_id) == nonce
        assert discord.discord_nonce(reply_id + "x") != nonce

    def test_thread_is_the_channel_posted_to(self) -> None:
        request = discord.build_request(make_bot("discord"), make_reply("discord", thread_id="2200"))
        assert request.url == "https://discord.com/api/v10/channels/2200/messages"

    def test_followup_uses_the_interaction_webhook_without_auth(self) -> None:
        meta = {"interaction_token": "itok.secret", "application_id": "901"}
        reply = make_reply("discord", kind="followup", platform_meta=meta, options={"ephemeral": "true"})
        request = discord.build_request(make_bot("discord"), reply)
        assert (request.method, request.url) == ("POST", "https://discord.com/api/v10/webhooks/901/itok.secret")
        assert "Authorization" not in request.headers
        assert request.json == {"content": "hello", "flags": 64}
        assert "itok.secret" not in request.describe()

    def test_interaction_token_makes_a_text_reply_a_followup(self) -> None:
        reply = make_reply("discord", platform_meta={"interaction_token": "itok"})
        request = discord.build_request(make_bot("discord"), reply)
        assert request.url == "https://discord.com/api/v10/webhooks/900/itok"  # app id from the bot

    def test_followup_edit_defaults_to_the_original(self) -> None:
        reply = make_reply("discord", kind="edit", platform_meta={"interaction_token": "itok"})
        request = discord.build_request(make_bot("discord"), reply)
        assert (request.method, request.url) == (
            "PATCH", "https://discord.com/api/v10/webhooks/900/itok/messages/@original")

    def test_edit_and_typing(self) -> None:
        edit = discord.build_request(make_bot("discord"), make_reply("discord", kind="edit", target_message_id="5"))
        assert (edit.method, edit.url) == ("PATCH", "https://discord.com/api/v10/channels/1100/messages/5")
        assert edit.json == {"content": "hello"}
        typing = discord.build_request(make_bot("discord"), make_reply("discord", kind="typing", text=None))
        assert (typing.method, typing.url, typing.json) == (
            "POST", "https://discord.com/api/v10/channels/1100/typing", None)
        assert typing.content == b""

    def test_components_without_text(self) -> None:
        rows = [{"type": 1, "components": [{"type": 2, "label": "ok", "style": 1, "custom_id": "ok"}]}]
        request = discord.build_request(make_bot("discord"), make_reply("discord", text=None, markup=json.dumps(rows)))
        assert request.json["components"] == rows
        assert "content" not in request.json

    def test_bad_markup_is_invalid(self) -> None:
        with pytest.raises(InvalidReply, match="markup"):
            discord.build_request(make_bot("discord"), make_reply("discord", markup="{not json"))


class TestWhatsApp:
    def test_text_message(self) -> None:
        request = whatsapp.build_request(make_bot("whatsapp"), make_reply("whatsapp", reply_to="wamid.IN1"))
        assert (request.method, request.url) == ("POST", "https://graph.facebook.com/v21.0/555/messages")
        assert request.headers["Authorization"] == "Bearer EAAG"
        assert request.json == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": "4915112345678", "type": "text", "text": {"body": "hello"},
                                "context": {"message_id": "wamid.IN1"}}

    def test_bare_wa_id_uses_the_bots_number_and_api_version(self) -> None:
        bot = make_bot("whatsapp", api_version="v22.0")
        request = whatsapp.build_request(bot, make_reply("whatsapp", chat_id="4915112345678"))
        assert request.url == "https://graph.facebook.com/v22.0/777/messages"
        assert request.json["to"] == "4915112345678"

    def test_interactive_markup(self) -> None:
        markup = {"type": "button", "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}}
        request = whatsapp.build_request(make_bot("whatsapp"), make_reply("whatsapp", markup=json.dumps(markup)))
        assert request.json["type"] == "interactive"
        assert request.json["interactive"] == {**markup, "body": {"text": "hello"}}

    @pytest.mark.parametrize("kind", ["edit", "typing"])
    def test_edit_and_typing_are_unsupported(self, kind: str) -> None:
        with pytest.raises(UnsupportedReply):
            whatsapp.build_request(make_bot("whatsapp"), make_reply("whatsapp", kind=kind, target_message_id="1"))


class TestGeneric:
    def test_signed_post_to_the_bots_url(self) -> None:
        request = generic.build_request(make_bot("generic"), make_reply("generic"))
        assert (request.method, request.url) == ("POST", "https://hooks.example.com/botstream")
        expected = hmac.new(b"It's a Secret to Everybody", request.content, hashlib.sha256).hexdigest()
        assert request.headers["X-Hub-Signature-256"] == f"sha256={expected}"
        assert request.headers["X-Botstream-Reply-Id"] == "upd-1:0"
        assert request.json["text"] == "hello"
        assert "attempt" not in request.json and "platform_meta" not in request.json

    def test_signature_matches_the_documented_vector(self) -> None:
        assert generic.sign("It's a Secret to Everybody", b"Hello, World!") == (
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
