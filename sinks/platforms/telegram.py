"""Telegram Bot API: sendMessage / editMessageText / sendChatAction, and what its answers mean.

Answers are `{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": "...",
"parameters": {...}}`; the signals we act on are in `parameters` (retry_after, migrate_to_chat_id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.sinks.errors import InvalidReply
from botstream.sinks.outcomes import Delivered, Moved, Outcome, Permanent, Retryable, Wait
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
DEFAULT_RETRY_AFTER_S = 1.0
# An edit whose text equals the current one: the earlier attempt landed and only its answer was lost.
NOT_MODIFIED = "message is not modified"


def build_request(bot: BotConfig, reply: Mapping[str, Any]) -> OutboundRequest:
    """The Bot API call for a reply (followups are plain messages here: they are a Discord notion)."""
    check_platform(bot, reply, "telegram")
    token = credential(bot, "token")
    kind = reply.get("kind", "text")
    chat_id = _chat_id(required(reply, "chat_id", "to address the chat"))
    body: dict[str, Any] = {"chat_id": chat_id}
    thread_id = reply.get("thread_id")
    if kind == "typing":
        method = "sendChatAction"
        body["action"] = "typing"
        if thread_id:
            body["message_thread_id"] = _int(thread_id, "thread_id", reply)
    elif kind == "edit":
        method = "editMessageText"
        body["message_id"] = _int(required(reply, "target_message_id", "for an edit"), "target_message_id", reply)
        body["text"] = required(reply, "text", "for an edit")
    else:
        method = "sendMessage"
        body["text"] = required(reply, "text", "for a message")
        if thread_id:
            body["message_thread_id"] = _int(thread_id, "thread_id", reply)
        if reply.get("reply_to"):
            # Without allow_sending_without_reply a deleted original turns the reply into a 400.
            body["reply_parameters"] = {"message_id": _int(reply["reply_to"], "reply_to", reply),
                                        "allow_sending_without_reply": True}
    if kind != "typing":
        markup = parsed_markup(reply)
        if markup is not None:
            body["reply_markup"] = markup
        body.update(_options(options(reply), edit=kind == "edit"))
    return OutboundRequest("POST", f"{bot.api_base_url}/bot{token}/{method}", common_headers(reply), body,
                           redact=(token,))


def classify(response: InboundResponse) -> Outcome:
    """Telegram's answer as an outcome.

    A 429 does not say which limit was hit; we call it "chat" scope because the limiter already keeps
    the bot under its 30/s, so the per-chat and per-group limits are what a 429 is left to mean.
    """
    body = response.json_object()
    params = as_object(body.get("parameters"))
    description = str(body.get("description") or f"HTTP {response.status}")
    if 200 <= response.status < 300 and body.get("ok") is True:
        result = body.get("result")
        if isinstance(result, dict) and "message_id" in result:
            return Delivered(str(result["message_id"]))
        return Delivered(None)
    if params.get("migrate_to_chat_id") is not None:
        return Moved(str(params["migrate_to_chat_id"]))
    if response.status == 429 or body.get("error_code") == 429:
        retry_after = params.get("retry_after")
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after >= 0:
            return Wait(float(retry_after), "chat")
        return Wait(response.retry_after_s(DEFAULT_RETRY_AFTER_S), "chat")
    if response.status >= 500:
        return Retryable(description, response.status)
    if response.status == 400 and NOT_MODIFIED in description.lower():
        return Delivered(None)
    code = body.get("error_code", response.status)
    return Permanent(description, response.status, str(code))


def _chat_id(chat_id: str) -> int | str:
    """Numeric ids go as numbers; "@channelusername" stays a string."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def _int(value: Any, key: str, reply: Mapping[str, Any]) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: {key} {value!r} is not a Telegram id") from None


def _options(opts: Mapping[str, str], *, edit: bool) -> dict[str, Any]:
    """Known options only: an unknown key would make Telegram refuse the whole message."""
    out: dict[str, Any] = {}
    if opts.get("parse_mode"):
        out["parse_mode"] = opts["parse_mode"]
    if "disable_web_page_preview" in opts:
        out["link_preview_options"] = {"is_disabled": option_flag(opts["disable_web_page_preview"])}
    if not edit:
        for flag in ("disable_notification", "protect_content"):
            if flag in opts:
                out[flag] = option_flag(opts[flag])
    return out
