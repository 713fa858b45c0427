"""Discord REST API v10: channel messages and interaction follow-ups, and what its answers mean.

Discord is the one platform with send idempotency: a `nonce` (at most 25 characters) with
`enforce_nonce: true` makes a retried create return the message the first try made, so we derive the
nonce from the reply id. Limits are learned per route bucket from `X-RateLimit-*` headers, which
`rate_limit_headers` exposes for the limiter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.sinks.errors import InvalidReply
from botstream.sinks.outcomes import Delivered, DiscordBucketUpdate, Outcome, Permanent, Retryable, Wait
from botstream.sinks.platforms.base import (
    InboundResponse,
    OutboundRequest,
    check_platform,
    common_headers,
    credential,
    option_flag,
    options,
    parsed_markup,
    required,
)

TEXT_LIMIT = 2000
NONCE_MAX = 25
# A 429 without Discord's JSON comes from Cloudflare in front of the API: an IP-level block.
CLOUDFLARE_RETRY_AFTER_S = 60.0
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6


def discord_nonce(reply_id: str) -> str:
    """The reply id when it fits in 25 characters, else the first 25 hex digits of its SHA-256
    (100 bits: collisions within Discord's few-minute dedupe window are not a concern)."""
    if len(reply_id) <= NONCE_MAX:
        return reply_id
    return hashlib.sha256(reply_id.encode()).hexdigest()[:NONCE_MAX]


def is_followup(reply: Mapping[str, Any]) -> bool:
    return reply.get("kind") == "followup" or bool((reply.get("platform_meta") or {}).get("interaction_token"))


def build_request(bot: BotConfig, reply: Mapping[str, Any]) -> OutboundRequest:
    """The API call for a reply.

    Follow-ups go to the interaction webhook, which authenticates by the token in its path and
    answers even where the bot has no channel permissions; everything else uses the bot token.
    A `thread_id` is a channel in Discord, so a reply in a thread is posted to the thread's id.
    """
    check_platform(bot, reply, "discord")
    kind = reply.get("kind", "text")
    api = f"{bot.api_base_url}/api/v10"
    headers = common_headers(reply)
    if kind != "typing" and is_followup(reply):
        return _followup(bot, reply, api, headers)
    token = credential(bot, "bot_token")
    headers["Authorization"] = f"Bot {token}"
    channel = str(reply.get("thread_id") or required(reply, "chat_id", "to address the channel"))
    if kind == "typing":
        headers.pop("Content-Type")
        return OutboundRequest("POST", f"{api}/channels/{channel}/typing", headers, None, redact=(token,))
    body = _message_body(reply)
    if kind == "edit":
        target = required(reply, "target_message_id", "for an edit")
        return OutboundRequest("PATCH", f"{api}/channels/{channel}/messages/{target}", headers, body,
                               redact=(token,))
    body["nonce"] = discord_nonce(required(reply, "reply_id", "for the nonce"))
    body["enforce_nonce"] = True
    if reply.get("reply_to"):
        body["message_reference"] = {"message_id": str(reply["reply_to"]), "fail_if_not_exists": False}
    return OutboundRequest("POST", f"{api}/channels/{channel}/messages", headers, body, redact=(token,))


def classify(response: InboundResponse) -> Outcome:
    """Discord's answer as an outcome; a 429 names its scope (global, or the route bucket)."""
    body = response.json_object()
    if 200 <= response.status < 300:
        message_id = body.get("id")
        return Delivered(str(message_id) if message_id is not None else None)
    if response.status == 429:
        return _rate_limited(response, body)
    message = str(body.get("message") or f"HTTP {response.status}")
    if response.status >= 500:
        return Retryable(message, response.status)
    code = body.get("code")
    return Permanent(message, response.status, str(code) if code is not None else None)


def rate_limit_headers(response: InboundResponse) -> DiscordBucketUpdate | None:
    """The route bucket state Discord reports on a response, or None when it sent no full set."""
    h = response.headers
    bucket = h.get("x-ratelimit-bucket")
    try:
        limit = int(h["x-ratelimit-limit"])
        remaining = int(h["x-ratelimit-remaining"])
        reset_after = float(h["x-ratelimit-reset-after"])
    except (KeyError, ValueError):
        return None
    if not bucket or limit < 1 or remaining < 0 or not reset_after >= 0:
        return None
    return DiscordBucketUpdate(bucket, limit, remaining, reset_after)


def _rate_limited(response: InboundResponse, body: dict[str, Any]) -> Wait:
    headers = response.headers
    if not body:
        return Wait(response.retry_after_s(CLOUDFLARE_RETRY_AFTER_S), "global")
    retry_after = body.get("retry_after")
    if not isinstance(retry_after, int | float) or isinstance(retry_after, bool) or not retry_after >= 0:
        retry_after = response.retry_after_s(1.0)
    is_global = (body.get("global") is True or headers.get("x-ratelimit-global", "").lower() == "true"
                 or headers.get("x-ratelimit-scope") == "global")
    if is_global:
        return Wait(float(retry_after), "global")
    bucket = headers.get("x-ratelimit-bucket")
    return Wait(float(retry_after), f"route:{bucket}" if bucket else "chat")


def _followup(bot: BotConfig, reply: Mapping[str, Any], api: str, headers: dict[str, str]) -> OutboundRequest:
    meta = reply.get("platform_meta") or {}
    token = meta.get("interaction_token")
    if not token:
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: a follow-up needs platform_meta.interaction_token")
    app_id = meta.get("application_id") or credential(bot, "application_id")
    url = f"{api}/webhooks/{app_id}/{token}"
    body = _message_body(reply)
    if reply.get("kind") == "edit":
        target = reply.get("target_message_id") or "@original"
        return OutboundRequest("PATCH", f"{url}/messages/{target}", headers, body, redact=(token,))
    return OutboundRequest("POST", url, headers, body, redact=(token,))


def _message_body(reply: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    markup = parsed_markup(reply)
    if reply.get("text"):
        body["content"] = reply["text"]
    elif markup is None:
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: text or markup is required for a message")
    if isinstance(markup, list):
        body["components"] = markup
    elif isinstance(markup, dict):
        body.update(markup)  # e.g. {"embeds": [...], "components": [...]}
    opts = options(reply)
    flags = 0
    if option_flag(opts.get("suppress_embeds", "")):
        flags |= FLAG_SUPPRESS_EMBEDS
    if option_flag(opts.get("ephemeral", "")) and is_followup(reply):
        flags |= FLAG_EPHEMERAL
    if flags:
        body["flags"] = flags
    if "tts" in opts:
        body["tts"] = option_flag(opts["tts"])
    return body
