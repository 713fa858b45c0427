"""Telegram Bot API webhooks: one update per POST, authenticated by the secret token set with setWebhook.

Telegram signs nothing: it echoes the bot's `secret_token` in `X-Telegram-Bot-Api-Secret-Token`, so
the check is a constant-time equality (answered with 401 like every other platform's signature).
Mapped update types: message / channel_post (text starting with "/" -> command), edited_message /
edited_channel_post (edit), callback_query (callback), my_chat_member / chat_member (member) and
message_reaction (reaction). Any other type is verified and ignored (200, nothing produced).
"""

from __future__ import annotations

from typing import Any

from botstream.core.bots import BotConfig
from botstream.ingest.errors import BadRequest, Unauthorized
from botstream.ingest.platforms.base import (
    Outcome,
    RequestContext,
    Update,
    WebhookRequest,
    accepted,
    attachment,
    check_bot_platform,
    check_content_type,
    check_method,
    compact_meta,
    constant_time_equal,
)
from botstream.ingest.platforms.jsonfields import (
    get_bool,
    get_dict,
    get_dicts,
    get_id,
    get_int,
    get_str,
    parse_json_object,
)

SECRET_TOKEN_HEADER = "x-telegram-bot-api-secret-token"
CHAT_TYPES = {"private": "private", "group": "group", "supergroup": "supergroup", "channel": "channel"}
MESSAGE_FIELDS = {"message": "message", "channel_post": "message",
                  "edited_message": "edit", "edited_channel_post": "edit"}
MEMBER_FIELDS = ("my_chat_member", "chat_member")
# Message fields that carry a file (with file_size / mime_type) or a non-file attachment.
FILE_FIELDS = ("photo", "animation", "audio", "document", "video", "video_note", "voice", "sticker")
OTHER_ATTACHMENT_FIELDS = ("contact", "location", "venue", "poll", "dice", "game", "story")


def verify_telegram_secret_token(expected: str, received: str | None) -> None:
    """Raise Unauthorized unless the header carries the bot's secret token."""
    if not received:
        raise Unauthorized("signature_missing", "no X-Telegram-Bot-Api-Secret-Token header")
    if not constant_time_equal(expected, received):
        raise Unauthorized("signature_mismatch", "secret token does not match")


def normalize_telegram_update(ctx: RequestContext, payload: dict[str, Any]) -> list[Update]:
    """The Update of one Telegram update object, or none for a type we do not map."""
    update_id = get_id(payload, "update_id")
    if update_id is None:
        raise BadRequest("missing_update_id", "Telegram update without update_id")
    for field, kind in MESSAGE_FIELDS.items():
        message = get_dict(payload, field)
        if message is not None:
            return [_message_update(ctx, update_id, field, kind, message)]
    callback = get_dict(payload, "callback_query")
    if callback is not None:
        return [_callback_update(ctx, update_id, callback)]
    for field in MEMBER_FIELDS:
        member = get_dict(payload, field)
        if member is not None:
            return [_member_update(ctx, update_id, field, member)]
    reaction = get_dict(payload, "message_reaction")
    if reaction is not None:
        return [_reaction_update(ctx, update_id, reaction)]
    return []


def _message_update(ctx: RequestContext, update_id: str, field: str, kind: str,
                    message: dict[str, Any]) -> Update:
    chat_id, chat_type = _chat(message)
    sender = get_dict(message, "from")
    command_text = get_str(message, "text")
    if kind == "message" and command_text is not None and command_text.startswith("/"):
        kind = "command"
    date = get_int(message, "date")
    return ctx.update(
        chat_id=chat_id, chat_type=chat_type, update_id=update_id, kind=kind,
        user_id=get_id(sender, "id"), from_bot=get_bool(sender, "is_bot"), locale=get_str(sender, "language_code"),
        text=command_text if command_text is not None else get_str(message, "caption"),
        attachments=_attachments(message),
        reply_to=get_id(get_dict(message, "reply_to_message"), "message_id"),
        thread_id=get_id(message, "message_thread_id"),
        platform_ts_ms=date * 1000 if date is not None else None,
        platform_meta=compact_meta(update_type=field, message_id=get_id(message, "message_id")),
    )


def _callback_update(ctx: RequestContext, update_id: str, callback: dict[str, Any]) -> Update:
    """A button press. Buttons under inline-mode messages have no chat: those are keyed by the user,
    whose private chat has the user's id, with chat type "unknown"."""
    sender = get_dict(callback, "from")
    message = get_dict(callback, "message")
    if get_dict(message, "chat") is not None:
        chat_id, chat_type = _chat(message)
    else:
        user_chat = get_id(sender, "id")
        if user_chat is None:
            raise BadRequest("missing_chat_id", "callback_query without message chat or sender")
        chat_id, chat_type = user_chat, "unknown"
    return ctx.update(
        chat_id=chat_id, chat_type=chat_type, update_id=update_id, kind="callback",
        user_id=get_id(sender, "id"), from_bot=get_bool(sender, "is_bot"), locale=get_str(sender, "language_code"),
        text=get_str(callback, "data") or get_str(callback, "game_short_name"),
        reply_to=get_id(message, "message_id"),
        thread_id=get_id(message, "message_thread_id"),
        platform_meta=compact_meta(update_type="callback_query", callback_query_id=get_str(callback, "id"),
                            inline_message_id=get_str(callback, "inline_message_id")),
    )


def _member_update(ctx: RequestContext, update_id: str, field: str, member: dict[str, Any]) -> Update:
    chat_id, chat_type = _chat(member)
    sender = get_dict(member, "from")
    date = get_int(member, "date")
    return ctx.update(
        chat_id=chat_id, chat_type=chat_type, update_id=update_id, kind="member",
        user_id=get_id(sender, "id"), from_bot=get_bool(sender, "is_bot"), locale=get_str(sender, "language_code"),
        platform_ts_ms=date * 1000 if date is not None else None,
        platform_meta=compact_meta(update_type=field,
                            old_status=get_str(get_dict(member, "old_chat_member"), "status"),
                            new_status=get_str(get_dict(member, "new_chat_member"), "status")),
    )


def _reaction_update(ctx: RequestContext, update_id: str, reaction: dict[str, Any]) -> Update:
    """The new set of emoji reactions of one user on one message (text None when all were removed)."""
    chat_id, chat_type = _chat(reaction)
    user = get_dict(reaction, "user")
    emojis = [e for r in get_dicts(reaction, "new_reaction") if (e := get_str(r, "emoji")) is not None]
    date = get_int(reaction, "date")
    return ctx.update(
        chat_id=chat_id, chat_type=chat_type, update_id=update_id, kind="reaction",
        user_id=get_id(user, "id"), from_bot=get_bool(user, "is_bot"), locale=get_str(user, "language_code"),
        text=" ".join(emojis) or None,
        reply_to=get_id(reaction, "message_id"),
        platform_ts_ms=date * 1000 if date is not None else None,
        platform_meta=compact_meta(update_type="message_reaction"),
    )


def _chat(obj: dict[str, Any] | None) -> tuple[str, str]:
    """(chat id, chat type) of an object carrying `chat`; group ids are negative and stay so."""
    chat = get_dict(obj, "chat")
    chat_id = get_id(chat, "id")
    if chat_id is None:
        raise BadRequest("missing_chat_id", "Telegram update without chat.id")
    return chat_id, CHAT_TYPES.get(get_str(chat, "type") or "", "unknown")


def _attachments(message: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for field in FILE_FIELDS:
        value = message.get(field)
        if field == "photo" and isinstance(value, list):  # sizes of one photo, smallest first
            value = value[-1] if value else None
        if field == "document" and "animation" in message:  # Telegram repeats an animation as document
            continue
        if isinstance(value, dict):
            found.append(attachment(field, get_str(value, "mime_type"), get_int(value, "file_size")))
    for field in OTHER_ATTACHMENT_FIELDS:
        if field == "location" and "venue" in message:  # a venue repeats its location
            continue
        if isinstance(message.get(field), dict):
            found.append(attachment(field))
    return found


class TelegramAdapter:
    platform = "telegram"
    max_body_bytes: int | None = None

    def handle(self, bot: BotConfig, request: WebhookRequest, *, now: float, received_at_ms: int,
               correlation_id: str) -> Outcome:
        check_bot_platform(bot, self.platform)
        check_method(request)
        verify_telegram_secret_token(bot.secret("secret_token"), request.headers.get(SECRET_TOKEN_HEADER))
        check_content_type(request.headers)
        payload = parse_json_object(request.body)
        ctx = RequestContext(self.platform, bot.id, request.body, received_at_ms, correlation_id)
        return accepted(normalize_telegram_update(ctx, payload))
