"""Discord interactions over HTTP: Ed25519-signed JSON, answered within 3 s.

Signature: `X-Signature-Ed25519` = hex Ed25519 signature of `X-Signature-Timestamp + body` under the
application's public key. Discord documents no replay window; we reject timestamps more than 300 s
from now anyway. Discord probes endpoints with bad signatures and drops those that accept them, so
nothing is answered before the signature checks out.

PING (type 1) is answered `{"type":1}`. Everything else becomes one Update, answered with a deferred
response so the handler can reply later through `POST /webhooks/{application_id}/{interaction_token}`
(both carried in `platform_meta`): APPLICATION_COMMAND -> kind command, text `/name [sub] opt1 opt2`,
answer type 5; MESSAGE_COMPONENT -> callback, text = custom_id, answer type 6 (deferred update);
MODAL_SUBMIT and unknown types -> interaction, answer type 5; AUTOCOMPLETE -> interaction, answered at
once with no choices (autocomplete cannot be deferred). Ordinary channel messages never come here
(they arrive over the Gateway).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest, Unauthorized
from botstream.ingest.platforms.base import (
    Accepted,
    HandshakeResponse,
    Outcome,
    RequestContext,
    Update,
    WebhookRequest,
    attachment,
    attachment_kind_for_mime,
    check_bot_platform,
    check_content_type,
    check_method,
    check_signed_timestamp,
    compact_meta,
)
from botstream.ingest.platforms.jsonfields import (
    clean_text,
    get_bool,
    get_dict,
    get_dicts,
    get_id,
    get_int,
    get_str,
    parse_json_object,
)

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"
TIMESTAMP_WINDOW_S = 300
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
KINDS = {APPLICATION_COMMAND: "command", MESSAGE_COMPONENT: "callback"}
RESPONSES = {
    PING: b'{"type":1}',
    APPLICATION_COMMAND: b'{"type":5}',  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    MESSAGE_COMPONENT: b'{"type":6}',  # DEFERRED_UPDATE_MESSAGE
    AUTOCOMPLETE: b'{"type":8,"data":{"choices":[]}}',
}
DEFAULT_RESPONSE = b'{"type":5}'
THREAD_CHANNEL_TYPES = (10, 11, 12)
GROUP_DM_CHANNEL_TYPE = 3
SUBCOMMAND_TYPES = (1, 2)  # SUB_COMMAND, SUB_COMMAND_GROUP: carry options, no value
MAX_OPTION_DEPTH = 3  # group -> subcommand -> options is Discord's deepest
DISCORD_EPOCH_MS = 1420070400000
_SIGNATURE_HEX = re.compile(r"[0-9a-fA-F]{128}")
_SNOWFLAKE = re.compile(r"[0-9]{1,19}")


def verify_discord_signature(public_key_hex: str, timestamp: str | None, body: bytes, signature: str | None,
                             now: float) -> None:
    """Raise Unauthorized unless `signature` is the application's Ed25519 signature of timestamp + body
    and the timestamp is within TIMESTAMP_WINDOW_S of `now`."""
    if not signature:
        raise Unauthorized("signature_missing", "no X-Signature-Ed25519 header")
    timestamp = check_signed_timestamp(timestamp, "X-Signature-Timestamp", now, TIMESTAMP_WINDOW_S)
    if not _SIGNATURE_HEX.fullmatch(signature):
        raise Unauthorized("signature_malformed", "X-Signature-Ed25519 is not 64 bytes of hex")
    try:
        key = _public_key(public_key_hex)
    except ValueError:
        raise Unauthorized("public_key_invalid", "the bot's Discord public_key is not 32 bytes of hex") from None
    try:
        key.verify(bytes.fromhex(signature), timestamp.encode() + body)
    except InvalidSignature:
        raise Unauthorized("signature_mismatch", "X-Signature-Ed25519 does not match the body") from None


@lru_cache(maxsize=256)
def _public_key(public_key_hex: str) -> Ed25519PublicKey:
    """Parsed once per key: a public key is not a secret, so caching it costs nothing."""
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex.strip()))


def normalize_discord_interaction(ctx: RequestContext, interaction: dict[str, Any],
                                  default_application_id: str | None = None) -> Update:
    """The Update of one non-PING interaction, carrying what the follow-up needs in platform_meta."""
    interaction_id = get_id(interaction, "id")
    if interaction_id is None:
        raise BadRequest("missing_update_id", "Discord interaction without id")
    interaction_type = get_int(interaction, "type")
    channel = get_dict(interaction, "channel")
    channel_id = get_id(interaction, "channel_id") or get_id(channel, "id")
    if channel_id is None:
        raise BadRequest("missing_chat_id", "Discord interaction without channel_id")
    guild_id = get_id(interaction, "guild_id")
    user = get_dict(get_dict(interaction, "member"), "user") or get_dict(interaction, "user")
    data = get_dict(interaction, "data")
    is_command = interaction_type in (APPLICATION_COMMAND, AUTOCOMPLETE)
    return ctx.update(
        chat_id=channel_id, chat_type=_chat_type(guild_id, get_int(channel, "type")),
        update_id=interaction_id, kind=KINDS.get(interaction_type or 0, "interaction"),
        user_id=get_id(user, "id"), from_bot=get_bool(user, "bot"),
        locale=get_str(interaction, "locale"),
        text=command_text(data) if is_command else get_str(data, "custom_id"),
        attachments=_attachments(data),
        reply_to=get_id(get_dict(interaction, "message"), "id"),
        platform_ts_ms=snowflake_ms(interaction_id),
        platform_meta=compact_meta(
            interaction_token=get_str(interaction, "token"),
            application_id=get_id(interaction, "application_id") or default_application_id,
            interaction_type=str(interaction_type) if interaction_type is not None else None,
            guild_id=guild_id, command_name=get_str(data, "name") if is_command else None,
            custom_id=None if is_command else get_str(data, "custom_id")),
    )


def command_text(data: dict[str, Any] | None) -> str | None:
    """`/name [group] [subcommand] value1 value2 ...` in the order Discord sent the options."""
    name = get_str(data, "name")
    if name is None:
        return None
    return " ".join(["/" + name, *_option_words(get_dicts(data, "options"), MAX_OPTION_DEPTH)])


def _option_words(options: list[dict[str, Any]], depth: int) -> list[str]:
    words: list[str] = []
    for option in options:
        if "value" in option:
            word = _render_value(option["value"])
            if word is not None:
                words.append(word)
        elif get_int(option, "type") in SUBCOMMAND_TYPES and depth > 0:
            name = get_str(option, "name")
            words.extend([name] if name else [])
            words.extend(_option_words(get_dicts(option, "options"), depth - 1))
    return words


def _render_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return clean_text(value)
    return None


def snowflake_ms(snowflake: str) -> int | None:
    """When Discord created the object with this id (its creation time is in the id's top 42 bits)."""
    if not _SNOWFLAKE.fullmatch(snowflake) or int(snowflake) >= 1 << 64:
        return None
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


def _chat_type(guild_id: str | None, channel_type: int | None) -> str:
    if channel_type in THREAD_CHANNEL_TYPES:
        return "thread"
    if guild_id is not None or channel_type == GROUP_DM_CHANNEL_TYPE:
        return "group"
    return "private"


def _attachments(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Files given to attachment options of a command (`data.resolved.attachments`, keyed by id)."""
    resolved = get_dict(get_dict(data, "resolved"), "attachments") or {}
    return [attachment(attachment_kind_for_mime(get_str(a, "content_type")), get_str(a, "content_type"),
                       get_int(a, "size")) for a in resolved.values() if isinstance(a, dict)]


class DiscordAdapter:
    platform = "discord"
    max_body_bytes: int | None = None

    def handle(self, bot: BotConfig, request: WebhookRequest, *, now: float, received_at_ms: int,
               correlation_id: str) -> Outcome:
        check_bot_platform(bot, self.platform)
        check_method(request)
        verify_discord_signature(bot.secret("public_key"), request.headers.get(TIMESTAMP_HEADER), request.body,
                                 request.headers.get(SIGNATURE_HEADER), now)
        check_content_type(request.headers)
        interaction = parse_json_object(request.body)
        interaction_type = get_int(interaction, "type")
        if interaction_type == PING:
            return HandshakeResponse(status=200, body=RESPONSES[PING], content_type="application/json")
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        update = normalize_discord_interaction(ctx, interaction, bot.secret("application_id"))
        return Accepted(updates=[update], status=200, content_type="application/json",
                        body=RESPONSES.get(interaction_type or 0, DEFAULT_RESPONSE))
