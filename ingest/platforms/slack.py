"""Slack Events API webhooks: HMAC-signed JSON envelopes, one event each.

Signature: `X-Slack-Signature: v0=hex(HMAC-SHA256(signing_secret, "v0:" + timestamp + ":" + body))`
with `X-Slack-Request-Timestamp` within 300 s of now (replay window). Retries carry
`X-Slack-Retry-Num`; they are accepted like first deliveries (dedupe is downstream, on event_id).

`url_verification` is answered with its challenge as text/plain. `event_callback` envelopes whose
event is `message` or `app_mention` become one Update (kind message, or edit / member / other by
subtype; never command: slash commands are form-encoded POSTs to another URL). Every other envelope
or event type is verified and ignored. Chat ids are `{team_id}/{channel}`, since ':' separates the
parts of the chat key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest, Unauthorized
from botstream.ingest.platforms.base import (
    HandshakeResponse,
    Outcome,
    RequestContext,
    Update,
    WebhookRequest,
    accepted,
    attachment,
    attachment_kind_for_mime,
    check_bot_platform,
    check_content_type,
    check_method,
    check_signed_timestamp,
    compact_meta,
    constant_time_equal,
)
from botstream.ingest.platforms.jsonfields import (
    clean_text,
    get_dict,
    get_dicts,
    get_int,
    get_str,
    parse_json_object,
)

SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
RETRY_NUM_HEADER = "x-slack-retry-num"
RETRY_REASON_HEADER = "x-slack-retry-reason"
REPLAY_WINDOW_S = 300
MESSAGE_EVENTS = ("message", "app_mention")
SUBTYPE_KINDS = {
    None: "message", "bot_message": "message", "file_share": "message", "thread_broadcast": "message",
    "me_message": "message", "message_changed": "edit", "channel_join": "member", "channel_leave": "member",
    "group_join": "member", "group_leave": "member",
}
CHANNEL_TYPES = {"im": "private", "mpim": "group", "channel": "group", "group": "group"}
CHANNEL_PREFIX_TYPES = {"D": "private", "C": "group", "G": "group"}
_SLACK_TS = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,9}))?")


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` value Slack puts on `body` sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def verify_slack_signature(signing_secret: str, timestamp: str | None, body: bytes, signature: str | None,
                           now: float) -> None:
    """Raise Unauthorized unless `signature` signs `body` at `timestamp`, and `timestamp` is within
    REPLAY_WINDOW_S of `now` (a captured request cannot be replayed later)."""
    if not signature:
        raise Unauthorized("signature_missing", "no X-Slack-Signature header")
    timestamp = check_signed_timestamp(timestamp, "X-Slack-Request-Timestamp", now, REPLAY_WINDOW_S)
    if not constant_time_equal(slack_signature(signing_secret, timestamp, body), signature.strip()):
        raise Unauthorized("signature_mismatch", "X-Slack-Signature does not match the body")


def url_verification_response(payload: dict[str, Any]) -> HandshakeResponse:
    challenge = get_str(payload, "challenge")
    if challenge is None:
        raise BadRequest("challenge_missing", "url_verification without challenge")
    return HandshakeResponse(status=200, body=challenge.encode(), content_type="text/plain")


def normalize_slack_event(ctx: RequestContext, payload: dict[str, Any],
                          headers: Mapping[str, str] | None = None) -> list[Update]:
    """The Update of an event_callback envelope carrying a message event; none for anything else."""
    event = get_dict(payload, "event")
    if event is None or get_str(payload, "type") != "event_callback" or get_str(event, "type") not in MESSAGE_EVENTS:
        return []
    event_id = get_str(payload, "event_id")
    if event_id is None:
        raise BadRequest("missing_update_id", "Slack event without event_id")
    team_id = get_str(payload, "team_id") or get_str(event, "team")
    channel = get_str(event, "channel")
    if team_id is None or channel is None:
        raise BadRequest("missing_chat_id", "Slack message event without team_id or channel")
    subtype = get_str(event, "subtype")
    kind = SUBTYPE_KINDS.get(subtype, "other")
    message = get_dict(event, "message") if subtype == "message_changed" else event
    message = message or {}
    bot_id = get_str(message, "bot_id") or get_str(event, "bot_id")
    headers = headers or {}
    return [ctx.update(
        chat_id=f"{team_id}/{channel}", chat_type=_chat_type(event, channel), update_id=event_id, kind=kind,
        user_id=get_str(message, "user"), from_bot=bot_id is not None or subtype == "bot_message",
        text=get_str(message, "text"),
        attachments=[attachment(attachment_kind_for_mime(get_str(f, "mimetype")), get_str(f, "mimetype"),
                                get_int(f, "size")) for f in get_dicts(message, "files")],
        thread_id=get_str(message, "thread_ts"),
        platform_ts_ms=slack_ts_ms(get_str(event, "ts")) or _seconds_ms(get_int(payload, "event_time")),
        platform_meta=compact_meta(
            event_type=get_str(event, "type"), subtype=subtype, team_id=team_id, channel=channel,
            message_ts=get_str(message, "ts") or get_str(event, "deleted_ts"), bot_id=bot_id,
            api_app_id=get_str(payload, "api_app_id"),
            retry_num=_header(headers, RETRY_NUM_HEADER), retry_reason=_header(headers, RETRY_REASON_HEADER)),
    )]


def slack_ts_ms(ts: str | None) -> int | None:
    """Slack's "1355517523.000005" message timestamps in milliseconds (exact, no float rounding)."""
    match = _SLACK_TS.fullmatch(ts) if ts else None
    if match is None:
        return None
    return int(match[1]) * 1000 + int(((match[2] or "") + "000")[:3])


def _seconds_ms(seconds: int | None) -> int | None:
    return seconds * 1000 if seconds is not None else None


def _chat_type(event: dict[str, Any], channel: str) -> str:
    """From channel_type when Slack sends it (message events), else from the id's prefix (app_mention)."""
    channel_type = get_str(event, "channel_type")
    if channel_type in CHANNEL_TYPES:
        return CHANNEL_TYPES[channel_type]
    return CHANNEL_PREFIX_TYPES.get(channel[:1], "unknown")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return clean_text(value) if value else None


class SlackAdapter:
    platform = "slack"
    max_body_bytes: int | None = None

    def handle(self, bot: BotConfig, request: WebhookRequest, *, now: float, received_at_ms: int,
               correlation_id: str) -> Outcome:
        check_bot_platform(bot, self.platform)
        check_method(request)
        headers = request.headers
        verify_slack_signature(bot.secret("signing_secret"), headers.get(TIMESTAMP_HEADER), request.body,
                               headers.get(SIGNATURE_HEADER), now)
        check_content_type(headers)
        payload = parse_json_object(request.body)
        if get_str(payload, "type") == "url_verification":
            return url_verification_response(payload)
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        return accepted(normalize_slack_event(ctx, payload, headers))
