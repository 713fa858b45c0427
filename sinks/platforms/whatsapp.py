"""WhatsApp Cloud API: POST /{version}/{phone_number_id}/messages, and what its answers mean.

Errors come as `{"error": {"code": N, "message": ..., "error_data": {"details": ...}}}` and the code,
not the HTTP status, says what happened, so classification goes by code first. WhatsApp cannot edit
a sent message, and its typing indicator needs the id of the user's message, so edits and typing
replies are `UnsupportedReply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.sinks.errors import InvalidReply, UnsupportedReply
from botstream.sinks.outcomes import Delivered, Outcome, Permanent, Retryable, Wait
from botstream.sinks.platforms.base import (
    InboundResponse,
    OutboundRequest,
    as_object,
    check_platform,
    common_headers,
    credential,
    option_flag,
    options,
    parsed_markup,
    required,
)

TEXT_LIMIT = 4096

# Rate-limit codes -> (seconds to wait, scope). None of them carries a retry time, so the waits are
# ours:
#   130429 throughput (80 msg/s per number) is a per-second limit: a short pause of the bot.
#   131056 pair limit (one user, ~1 msg / 6 s): pause that chat for one pair interval.
#   80007 WABA rate limit and 4 app API call limit are counted over longer windows: pause a minute.
#   131048 spam rate limit: the number is restricted because users flagged its messages. It lifts
#     with time, every chat would fail alike, and sending on makes the quality rating worse; so it is
#     a Wait on the whole bot for 15 min rather than a Permanent that would dead-letter every reply
#     within seconds. The retry budget still dead-letters a reply if the restriction outlasts it.
RATE_LIMIT_CODES: dict[int, tuple[float, str]] = {
    130429: (2.0, "bot"),
    131056: (6.0, "chat"),
    80007: (60.0, "bot"),
    4: (60.0, "bot"),
    131048: (900.0, "bot"),
}
# Codes that say "try again later": Meta's generic/unknown/service errors.
RETRYABLE_CODES = frozenset({1, 2, 131000, 131016, 133004})


def build_request(bot: BotConfig, reply: Mapping[str, Any]) -> OutboundRequest:
    """A text (or interactive, when markup is given) message to the user of "{phone_number_id}/{wa_id}".

    The sending number comes from the chat id (the number the user wrote to), falling back to the
    bot's `phone_number_id` for a chat id that is a bare wa_id.
    """
    check_platform(bot, reply, "whatsapp")
    kind = reply.get("kind", "text")
    if kind in ("edit", "typing"):
        raise UnsupportedReply(f"WhatsApp Cloud API cannot send a {kind!r} reply")
    token = credential(bot, "access_token")
    chat_id = required(reply, "chat_id", "to address the user")
    number, sep, wa_id = chat_id.partition("/")
    if not sep:
        number, wa_id = credential(bot, "phone_number_id"), chat_id
    text = required(reply, "text", "for a message")
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id}
    markup = parsed_markup(reply)
    if markup is not None and not isinstance(markup, dict):
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: WhatsApp markup must be an interactive object")
    if markup is not None:
        interactive = dict(markup)
        interactive.setdefault("body", {"text": text})
        body["type"] = "interactive"
        body["interactive"] = interactive
    else:
        text_part: dict[str, Any] = {"body": text}
        opts = options(reply)
        if "preview_url" in opts:
            text_part["preview_url"] = option_flag(opts["preview_url"])
        body["type"] = "text"
        body["text"] = text_part
    if reply.get("reply_to"):
        body["context"] = {"message_id": str(reply["reply_to"])}
    headers = common_headers(reply)
    headers["Authorization"] = f"Bearer {token}"
    url = f"{bot.api_base_url}/{bot.api_version}/{number}/messages"
    return OutboundRequest("POST", url, headers, body, redact=(token,))


def classify(response: InboundResponse) -> Outcome:
    body = response.json_object()
    if 200 <= response.status < 300:
        messages = body.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict) and messages[0].get("id"):
            return Delivered(str(messages[0]["id"]))
        return Delivered(None)
    error = as_object(body.get("error"))
    code = error.get("code")
    message = str(error.get("message") or f"HTTP {response.status}")
    details = as_object(error.get("error_data")).get("details")
    reason = f"{message}: {details}" if details else message
    if isinstance(code, int) and code in RATE_LIMIT_CODES:
        wait_s, scope = RATE_LIMIT_CODES[code]
        return Wait(wait_s, scope)
    if response.status == 429:
        return Wait(RATE_LIMIT_CODES[130429][0], "bot")
    if response.status >= 500 or (isinstance(code, int) and code in RETRYABLE_CODES):
        return Retryable(reason, response.status)
    return Permanent(reason, response.status, str(code) if code is not None else None)
