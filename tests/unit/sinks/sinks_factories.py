"""Replies and bots as the sinks' I/O shell would hand them over, for the sinks' unit tests.

A plain module (not conftest) with a name no other test directory uses, so the tests import it
directly under pytest's default import mode.
"""

from __future__ import annotations

from typing import Any

from botstream.core.bots import DEFAULT_API_BASE, BotConfig, Limits
from botstream.core.secret import Secret

CHAT_IDS = {"telegram": "42", "slack": "T1/C2", "discord": "1100", "whatsapp": "555/4915112345678",
            "generic": "chat-1"}
CREDENTIALS: dict[str, dict[str, Secret | str]] = {
    "telegram": {"secret_token": Secret("hook"), "token": Secret("123:ABC")},
    "slack": {"signing_secret": Secret("sig"), "bot_token": Secret("xoxb-1")},
    "discord": {"public_key": "ab" * 32, "application_id": "900", "bot_token": Secret("dtok")},
    "whatsapp": {"app_secret": Secret("app"), "verify_token": Secret("v"), "access_token": Secret("EAAG"),
                 "phone_number_id": "777"},
    "generic": {"secret": Secret("It's a Secret to Everybody")},
}


def make_reply(platform: str = "telegram", **overrides: Any) -> dict[str, Any]:
    chat_id = overrides.pop("chat_id", CHAT_IDS[platform])
    reply: dict[str, Any] = {
        "reply_id": "upd-1:0", "chat_key": f"{platform}:b1:{chat_id}", "platform": platform,
        "bot_id": "b1", "chat_id": chat_id, "chat_type": "private", "kind": "text", "text": "hello",
        "markup": None, "options": {}, "reply_to": None, "target_message_id": None, "thread_id": None,
        "chat_seq": 7, "causation_id": "upd-1", "correlation_id": "corr-1",
        "update_received_at_ms": 1_000, "created_at_ms": 1_100, "attempt": 0, "not_before_ms": 0,
        "first_error": None, "last_error": None, "platform_meta": {}, "traceparent": None,
    }
    reply.update(overrides)
    return reply


def make_bot(platform: str = "telegram", limits: Limits | None = None, **overrides: Any) -> BotConfig:
    base = DEFAULT_API_BASE[platform] or "https://hooks.example.com/botstream"
    return BotConfig(id="b1", platform=platform, credentials=dict(CREDENTIALS[platform]),
                     api_base_url=overrides.pop("api_base_url", base), limits=limits or Limits(), **overrides)
