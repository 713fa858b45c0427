"""Slack Web API: chat.postMessage / chat.update, answers through a `response_url`, and what their
answers mean.

Slack reports most failures as HTTP 200 with `{"ok": false, "error": "<code>"}`, so the status alone
says little; rate limits come as 429 with a `Retry-After` header. Slack has no typing indicator for
bots over the Web API, so typing replies are `UnsupportedReply` (the shell records them as skipped).

Ephemeral answers (only the user who acted sees them): a reply whose options ask for one
(`response_type="ephemeral"`, or `ephemeral="true"` as for Discord) is posted to the `response_url`
of the slash command or interaction it answers (carried in the reply's `platform_meta`), as
`{"text", "response_type": "ephemeral", "replace_original": false}`; the URL itself authenticates,
so no token is sent, and its secret path is masked in logs. Slack accepts a response_url up to five
times within 30 minutes and answers a plain `ok` (errors as a short text code, e.g. `used_url`,
`expired_url`, `no_text`). We post only to `https://hooks.slack.com/...` or under the bot's own
`api_base_url` (a proxy, the sandbox): the URL comes from the webhook, and the sinks must not be
turned into a client of any other host. An ephemeral reply without a response_url is refused
(`InvalidReply`) rather than posted for everyone to see. Every other reply goes in channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.sinks.errors import InvalidReply, UnsupportedReply
from botstream.sinks.outcomes import Delivered, Outcome, Permanent, Retryable, Wait
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
    split_chat_id,
)

TEXT_LIMIT = 40_000
DEFAULT_RETRY_AFTER_S = 1.0
# Slack error codes worth another try; every other `ok:false` error is about the request itself.
RETRYABLE_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "team_added_to_org"})
BOOLEAN_OPTIONS = ("mrkdwn", "unfurl_links", "unfurl_media", "reply_broadcast")
RESPONSE_URL_HOSTS = ("https://hooks.slack.com/",)
RESPONSE_URL_FLAGS = ("replace_original", "delete_original")
_TEXT_CODE = re.compile(rb"[a-z_]{2,64}")


def build_request(bot: BotConfig, reply: Mapping[str, Any]) -> OutboundRequest:
    """chat.postMessage (chat.update for edits) to the channel part of "{team_id}/{channel}".

    `reply_to` is not used: Slack has no quote-reply, and threading every answer would be a
    behaviour change; the handler asks for a thread with `thread_id` (thread_ts).
    """
    check_platform(bot, reply, "slack")
    kind = reply.get("kind", "text")
    if kind == "typing":
        raise UnsupportedReply("Slack's Web API has no typing indicator for bots")
    if kind != "edit" and wants_ephemeral(options(reply)):
        return response_url_request(bot, reply)
    token = credential(bot, "bot_token")
    _team, channel = split_chat_id(reply, '"{team_id}/{channel}"')
    body: dict[str, Any] = {"channel": channel}
    if kind == "edit":
        method = "chat.update"
        body["ts"] = required(reply, "target_message_id", "for an edit")
    else:
        method = "chat.postMessage"
        if reply.get("thread_id"):
            body["thread_ts"] = reply["thread_id"]
    markup = parsed_markup(reply)
    text = reply.get("text")
    if markup is None:
        body["text"] = required(reply, "text", "for a message without blocks")
    else:
        if text:
            body["text"] = text  # the notification and accessibility fallback of the blocks
        if isinstance(markup, list):
            body["blocks"] = markup
        elif isinstance(markup, dict):
            body.update(markup)  # e.g. {"blocks": [...], "attachments": [...]}
    opts = options(reply)
    for flag in BOOLEAN_OPTIONS:
        if flag in opts:
            body[flag] = option_flag(opts[flag])
    headers = common_headers(reply)
    headers["Content-Type"] = "application/json; charset=utf-8"  # Slack warns when charset is missing
    headers["Authorization"] = f"Bearer {token}"
    return OutboundRequest("POST", f"{bot.api_base_url}/api/{method}", headers, body, redact=(token,))


def wants_ephemeral(opts: Mapping[str, str]) -> bool:
    return opts.get("response_type", "").strip().lower() == "ephemeral" or option_flag(opts.get("ephemeral", ""))


def response_url_request(bot: BotConfig, reply: Mapping[str, Any]) -> OutboundRequest:
    """An ephemeral answer through the response_url of the update the reply answers."""
    url = str((reply.get("platform_meta") or {}).get("response_url") or "")
    if not url:
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: an ephemeral Slack answer needs the response_url "
                           "of a slash command or interaction (this update has none)")
    allowed = (*RESPONSE_URL_HOSTS, f"{bot.api_base_url}/") if bot.api_base_url else RESPONSE_URL_HOSTS
    if not url.startswith(allowed):
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: response_url is not on hooks.slack.com "
                           "nor under the bot's api_base_url")
    body: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False}
    markup = parsed_markup(reply)
    text = reply.get("text")
    if markup is None:
        body["text"] = required(reply, "text", "for a message without blocks")
    else:
        if text:
            body["text"] = text
        if isinstance(markup, list):
            body["blocks"] = markup
        elif isinstance(markup, dict):
            body.update(markup)
    opts = options(reply)
    for flag in RESPONSE_URL_FLAGS:
        if flag in opts:
            body[flag] = option_flag(opts[flag])
    if reply.get("thread_id"):
        body["thread_ts"] = reply["thread_id"]
    headers = common_headers(reply)
    headers["Content-Type"] = "application/json; charset=utf-8"
    secret_path = url.rstrip("/").rsplit("/", 1)[-1]  # the URL's own credential
    return OutboundRequest("POST", url, headers, body, redact=(secret_path,))


def classify(response: InboundResponse) -> Outcome:
    """Slack's answer as an outcome.

    chat.postMessage is limited per channel (~1/s), so a 429 is "chat" scope; the workspace-wide cap
    is kept by the limiter's per-workspace bucket rather than learned from 429s.
    """
    body = response.json_object()
    error = str(body.get("error") or "")
    if not body and response.body:  # a response_url answers in plain text: "ok", or an error code
        text = response.body.strip()
        if response.status == 200 and text == b"ok":
            return Delivered(None)
        if _TEXT_CODE.fullmatch(text):
            error = text.decode()
    if response.status == 429 or error == "ratelimited":
        return Wait(response.retry_after_s(DEFAULT_RETRY_AFTER_S), "chat")
    if response.status >= 500:
        return Retryable(error or f"HTTP {response.status}", response.status)
    if response.status == 200 and body.get("ok") is True:
        ts = body.get("ts")
        return Delivered(str(ts) if ts is not None else None)
    if error in RETRYABLE_ERRORS:
        return Retryable(error, response.status)
    if not error:
        if response.status == 200:  # not Slack's JSON: a proxy spoke; the post may have happened
            return Retryable("HTTP 200 without a Slack answer", 200, ambiguous=True)
        return Permanent(f"HTTP {response.status}", response.status, None)
    return Permanent(error, response.status, error)
