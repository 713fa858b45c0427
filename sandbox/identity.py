"""Which bot sent a message, per platform — the `bot` key of deliveries and limits.

- telegram: the numeric prefix of the token (`123456:ABC...` -> "123456"), which is the bot's user id.
- slack: `short_id(token)`, the first 12 hex digits of SHA-256 of the bot token.
- discord: the bot's user id, which real tokens carry base64-encoded in their first dot-separated
  segment; tokens that do not decode to digits fall back to `short_id(token)`. Interaction
  follow-ups are attributed to the `application_id` in their path, which equals the bot user id
  for applications created since 2018, so both routes usually share one bot key.
- whatsapp: the `phone_number_id` in the path (limits are per business number, not per token).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib

__all__ = ["bot_identity", "discord_bot_id", "short_id", "telegram_bot_id"]


@functools.lru_cache(maxsize=4096)
def short_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def telegram_bot_id(token: str) -> str:
    return token.partition(":")[0]


@functools.lru_cache(maxsize=4096)
def discord_bot_id(token: str) -> str:
    head = token.partition(".")[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    return decoded if decoded.isdigit() else short_id(token)


def bot_identity(platform: str, credential: str) -> str:
    """The bot key the sandbox files a message under, from the credential the sender used
    (the token; for WhatsApp the phone_number_id)."""
    if platform == "telegram":
        return telegram_bot_id(credential)
    if platform == "discord":
        return discord_bot_id(credential)
    if platform == "whatsapp":
        return credential
    if platform == "slack":
        return short_id(credential)
    raise ValueError(f"unknown platform {platform!r}")
