"""Slack webhooks: the Events API (JSON envelopes) and interactivity (slash commands, buttons, modals,
shortcuts: form-encoded), all HMAC-signed the same way.

Signature: `X-Slack-Signature: v0=hex(HMAC-SHA256(signing_secret, "v0:" + timestamp + ":" + body))`
over the raw body as sent (JSON or form-encoded alike), with `X-Slack-Request-Timestamp` within 300 s
of now (replay window). Retries carry `X-Slack-Retry-Num`; they are accepted like first deliveries
(dedupe is downstream, on the signed body's id).

Events API (`application/json`): `url_verification` is answered with its challenge as text/plain.
`event_callback` envelopes whose event is `message` or `app_mention` become one Update (kind message,
or edit / member / other by subtype), dedupe id `event_id`. Every other envelope or event type is
verified and ignored.

Interactivity (`application/x-www-form-urlencoded`; Slack needs the 200 within 3 s, which ingest
sends as soon as the record is durable, with an empty body so nothing is shown in Slack's place):

- a slash command is the form itself (`command`, `text`, `team_id`, `channel_id`, `user_id`,
  `response_url`, `trigger_id`, ...): kind command, text `"/ask what is x"`;
- components come as one `payload` field holding JSON: `block_actions` (text: the action's value,
  else its selected option's value, else its action_id), `view_submission` (text: the view's
  callback_id; its input values as JSON in platform_meta `view_state`), `shortcut` and
  `message_action` (text: the callback_id) become kind callback; other payload types
  (`view_closed`, `block_suggestion`, ...) and `ssl_check` probes are verified and ignored.

Their dedupe id is the payload's `trigger_id` (unique per invocation, inside the signed body). The
`response_url` is kept in platform_meta and travels with the replies (`REPLY_META_KEYS`), so a bot can
answer ephemerally through it. Chat ids are `{team_id}/{channel}`, since ':' separates the parts of the
chat key; an interaction outside any channel (a modal, a global shortcut, the Home tab) is the user's
own conversation with the app, `{team_id}/{user_id}` (chat.postMessage to a user id posts there).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest, Unauthorized, UnsupportedMediaType
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
CHANNEL_PREFIX_TYPES = {"D": "private", "C": "group", "G": "group", "U": "private", "W": "private"}
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 64  # a slash command has ~15; more is not Slack
CALLBACK_PAYLOADS = ("block_actions", "view_submission", "shortcut", "message_action")
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


def media_type(headers: Mapping[str, str]) -> str:
    """The request's media type, lower-cased, without parameters (415 when there is none)."""
    value = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if not value:
        raise UnsupportedMediaType("content_type_missing", "Content-Type application/json or form required")
    return value


def parse_form(body: bytes) -> dict[str, str]:
    """A form-encoded body (verified) as a dict; 400 when it is not one."""
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                              max_num_fields=MAX_FORM_FIELDS))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("malformed_form", "body is not a form") from None


def normalize_slack_form(ctx: RequestContext, form: dict[str, str]) -> list[Update]:
    """Interactivity: a slash command (the form itself) or a component (its `payload` field)."""
    if "payload" in form:
        try:
            payload = json.loads(form["payload"])
        except ValueError:
            raise BadRequest("malformed_json", "payload is not JSON") from None
        if not isinstance(payload, dict):
            raise BadRequest("json_not_object", "payload is not a JSON object")
        return normalize_slack_interaction(ctx, payload)
    if "command" in form:
        return [normalize_slash_command(ctx, form)]
    return []  # ssl_check probes, and anything else Slack may add: verified, nothing to do


def normalize_slash_command(ctx: RequestContext, form: dict[str, str]) -> Update:
    fields = {k: clean_text(v) for k, v in form.items()}
    trigger_id, team_id, channel = fields.get("trigger_id"), fields.get("team_id"), fields.get("channel_id")
    if not trigger_id:
        raise BadRequest("missing_update_id", "slash command without trigger_id")
    if not team_id or not channel:
        raise BadRequest("missing_chat_id", "slash command without team_id or channel_id")
    command = fields.get("command") or ""
    text = f"{command} {fields.get('text') or ''}".strip()
    return ctx.update(
        chat_id=f"{team_id}/{channel}", chat_type=CHANNEL_PREFIX_TYPES.get(channel[:1], "unknown"),
        update_id=trigger_id, kind="command", user_id=fields.get("user_id") or None, text=text or None,
        platform_meta=compact_meta(
            event_type="slash_command", command=command or None, team_id=team_id, channel=channel,
            response_url=fields.get("response_url") or None, trigger_id=trigger_id,
            api_app_id=fields.get("api_app_id") or None, enterprise_id=fields.get("enterprise_id") or None),
    )


def normalize_slack_interaction(ctx: RequestContext, payload: dict[str, Any]) -> list[Update]:
    """block_actions, view_submission, shortcut and message_action as callback Updates; none for others."""
    kind = get_str(payload, "type")
    if kind not in CALLBACK_PAYLOADS:
        return []
    trigger_id = get_str(payload, "trigger_id")
    if trigger_id is None:
        raise BadRequest("missing_update_id", f"Slack {kind} without trigger_id")
    team_id = get_str(get_dict(payload, "team"), "id") or get_str(get_dict(payload, "user"), "team_id")
    user_id = get_str(get_dict(payload, "user"), "id")
    container = get_dict(payload, "container") or {}
    view = get_dict(payload, "view") or {}
    message = get_dict(payload, "message") or {}
    response_urls = get_dicts(payload, "response_urls")  # view_submission with response_url_enabled inputs
    channel = (get_str(get_dict(payload, "channel"), "id") or get_str(container, "channel_id")
               or get_str(response_urls[0] if response_urls else None, "channel_id") or user_id)
    if team_id is None or channel is None:
        raise BadRequest("missing_chat_id", f"Slack {kind} without team or channel")
    action = (get_dicts(payload, "actions") or [{}])[0]
    if kind == "block_actions":
        text = (get_str(action, "value") or get_str(get_dict(action, "selected_option"), "value")
                or get_str(action, "action_id"))
    elif kind == "view_submission":
        text = get_str(view, "callback_id")
    else:
        text = get_str(payload, "callback_id")
    state = get_dict(get_dict(view, "state"), "values")
    message_ts = get_str(message, "ts") or get_str(container, "message_ts") or get_str(payload, "message_ts")
    return [ctx.update(
        chat_id=f"{team_id}/{channel}", chat_type=CHANNEL_PREFIX_TYPES.get(channel[:1], "unknown"),
        update_id=trigger_id, kind="callback", user_id=user_id, text=text, reply_to=message_ts,
        thread_id=get_str(message, "thread_ts"),
        platform_ts_ms=slack_ts_ms(get_str(action, "action_ts") or get_str(payload, "action_ts")),
        platform_meta=compact_meta(
            event_type=kind, team_id=team_id, channel=channel, trigger_id=trigger_id,
            response_url=get_str(payload, "response_url") or get_str(response_urls[0] if response_urls else None,
                                                                     "response_url"),
            action_id=get_str(action, "action_id"), block_id=get_str(action, "block_id"), message_ts=message_ts,
            callback_id=get_str(payload, "callback_id") or get_str(view, "callback_id"),
            view_id=get_str(view, "id"), private_metadata=get_str(view, "private_metadata"),
            view_state=json.dumps(state, separators=(",", ":"), ensure_ascii=False) if state else None,
            api_app_id=get_str(payload, "api_app_id")),
    )]


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
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        if media_type(headers) == FORM:
            return accepted(normalize_slack_form(ctx, parse_form(request.body)))
        check_content_type(headers)
        payload = parse_json_object(request.body)
        if get_str(payload, "type") == "url_verification":
            return url_verification_response(payload)
        return accepted(normalize_slack_event(ctx, payload, headers))
