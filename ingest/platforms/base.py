"""The contract between the HTTP shell and the inbound platform adapters, and the Update record they build.

An `InboundAdapter` turns one platform's webhooks into Updates (its outbound counterpart, which turns
replies into the platform's send requests, is `botstream.sinks.platforms.OutboundAdapter`).
The shell reads the request (bounded by `max_body_bytes`), finds the bot, and calls
`adapter.handle(bot, request, now=..., received_at_ms=..., correlation_id=...)`. The adapter does no
I/O and reads no clock: it verifies the raw bytes with the bot's own credentials, answers a handshake
(`HandshakeResponse`: reply at once, produce nothing) or returns `Accepted`: the records to produce
and the response to send once the broker has acknowledged them. Anything else is an `IngestError`
whose `status` the shell answers with.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from botstream.core.bots import BotConfig
from botstream.ingest.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from botstream.schemas.records import CHAT_KEY_SEPARATOR

KINDS = frozenset({"message", "command", "callback", "edit", "reaction", "member", "interaction", "status", "other"})
CHAT_TYPES = frozenset({"private", "group", "supergroup", "channel", "thread", "unknown"})
UPDATE_FIELDS = (
    "platform", "bot_id", "chat_id", "chat_type", "user_id", "update_id", "kind", "text", "attachments",
    "reply_to", "thread_id", "locale", "platform_ts_ms", "received_at_ms", "correlation_id", "from_bot",
    "platform_meta", "traceparent", "raw",
)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

Update = dict[str, Any]
"""A plain dict with exactly UPDATE_FIELDS as keys (the Avro schema uses the same names)."""


@dataclass(frozen=True)
class WebhookRequest:
    """What the HTTP shell hands over: header names lower-cased, the body as received."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class HandshakeResponse:
    """Answer immediately and write nothing (Slack url_verification, Discord PING, WhatsApp GET)."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Accepted:
    """Verified: produce `updates` (possibly none), and only once they are durable send this response."""

    updates: list[Update]
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


Outcome = HandshakeResponse | Accepted


class InboundAdapter(Protocol):
    """One platform's webhooks in: verify, answer handshakes, normalize into Updates (pure)."""

    platform: str
    max_body_bytes: int | None  # None: the settings default (1 MiB)

    def handle(self, bot: BotConfig, request: WebhookRequest, *, now: float, received_at_ms: int,
               correlation_id: str) -> Outcome: ...


def new_update(
    *, platform: str, bot_id: str, chat_id: str, update_id: str, kind: str, received_at_ms: int,
    correlation_id: str, raw: bytes, chat_type: str = "unknown", user_id: str | None = None,
    text: str | None = None, attachments: list[dict[str, Any]] | None = None, reply_to: str | None = None,
    thread_id: str | None = None, locale: str | None = None, platform_ts_ms: int | None = None,
    from_bot: bool = False, platform_meta: Mapping[str, str] | None = None, traceparent: str | None = None,
) -> Update:
    """Build an Update with every key present, so producers and the Avro codec never meet a gap.

    `chat_id` becomes the last part of the chat key `{platform}:{bot_id}:{chat_id}`, so it must be
    non-empty and free of ':' (a request breaking that is the sender's fault: 400). `reply_to` is the
    platform id of the message this update answers or concerns (a reply, a reaction's or a status's
    target, a button's message). Numbers a sender controls that do not fit Avro's long
    (`platform_ts_ms`, attachment sizes) are informational and become None rather than break the codec.
    """
    if not chat_id or CHAT_KEY_SEPARATOR in chat_id:
        raise BadRequest("invalid_chat_id", "chat id is empty or contains ':'")
    if not update_id:
        raise BadRequest("missing_update_id", "no platform update id to deduplicate on")
    if kind not in KINDS:
        raise ValueError(f"unknown update kind {kind!r}")
    if chat_type not in CHAT_TYPES:
        raise ValueError(f"unknown chat type {chat_type!r}")
    return {
        "platform": platform, "bot_id": bot_id, "chat_id": chat_id, "chat_type": chat_type,
        "user_id": user_id, "update_id": update_id, "kind": kind, "text": text,
        "attachments": list(attachments or []), "reply_to": reply_to, "thread_id": thread_id,
        "locale": locale, "platform_ts_ms": fit_int64(platform_ts_ms), "received_at_ms": received_at_ms,
        "correlation_id": correlation_id, "from_bot": from_bot, "platform_meta": dict(platform_meta or {}),
        "traceparent": traceparent, "raw": raw,
    }


@dataclass(frozen=True)
class RequestContext:
    """The fields every Update of one request shares, so normalizers only state what differs."""

    platform: str
    bot_id: str
    raw: bytes
    received_at_ms: int
    correlation_id: str

    def update(self, **fields: Any) -> Update:
        return new_update(platform=self.platform, bot_id=self.bot_id, raw=self.raw,
                          received_at_ms=self.received_at_ms, correlation_id=self.correlation_id, **fields)


def attachment(kind: str, mime_type: str | None = None, size: int | None = None) -> dict[str, Any]:
    """The attachment summary carried by an Update (the file itself stays on the platform)."""
    return {"kind": kind, "mime_type": mime_type, "size": fit_int64(size)}


def fit_int64(value: int | None) -> int | None:
    return value if value is not None and INT64_MIN <= value <= INT64_MAX else None


def attachment_kind_for_mime(mime_type: str | None) -> str:
    """One attachment vocabulary across platforms (Telegram's names) for those that only give a MIME type."""
    major = (mime_type or "").split("/", 1)[0].lower()
    return {"image": "photo", "video": "video", "audio": "audio"}.get(major, "document")


def compact_meta(**values: str | None) -> dict[str, str]:
    """platform_meta from the values that are present (the record's map holds strings only)."""
    return {key: value for key, value in values.items() if value is not None}


def accepted(updates: list[Update]) -> Accepted:
    """The common answer: 200 with an empty body once the updates (if any) are durable."""
    return Accepted(updates=updates, status=200, body=b"", content_type="text/plain")


def check_content_type(headers: Mapping[str, str]) -> None:
    """Refuse (415) a body that is not declared as JSON, whatever its parameters (charset=utf-8 is fine).

    Every platform handled here posts application/json; anything else is not a webhook of theirs.
    """
    value = headers.get("content-type")
    if value is None or not value.strip():
        raise UnsupportedMediaType("content_type_missing", "Content-Type application/json required")
    media_type = value.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("content_type_not_json", "Content-Type application/json required")


def check_method(request: WebhookRequest, allowed: tuple[str, ...] = ("POST",)) -> None:
    if request.method.upper() not in allowed:
        raise MethodNotAllowed(allowed)


def check_body_size(size: int, limit: int | None) -> None:
    """The shell checks Content-Length and the bytes read; adapters with their own limit re-check."""
    if limit is not None and size > limit:
        raise PayloadTooLarge("body_too_large", f"body of {size} bytes exceeds {limit}")


def check_bot_platform(bot: BotConfig, platform: str) -> None:
    """A bot id reached through another platform's URL is as unknown as a missing one."""
    if bot.platform != platform:
        raise NotFound("platform_mismatch", f"no {platform} bot with this id")


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def check_signed_timestamp(timestamp: str | None, header: str, now: float, window_s: int) -> str:
    """`timestamp` (the `header` a signature covers), if it is unix seconds within `window_s` of `now`,
    so a captured request cannot be replayed later (Slack, Discord); else Unauthorized."""
    if not timestamp:
        raise Unauthorized("timestamp_missing", f"no {header} header")
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise Unauthorized("timestamp_malformed", f"{header} is not unix seconds")
    if abs(now - int(timestamp)) > window_s:
        raise Unauthorized("timestamp_stale", f"{header} outside the {window_s} s window")
    return timestamp


def constant_time_equal(expected: str | bytes, received: str | bytes) -> bool:
    """hmac.compare_digest over bytes: on str it raises TypeError for non-ASCII, which a caller controls."""
    return hmac.compare_digest(_as_bytes(expected), _as_bytes(received))


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
