"""The Python shape of every record: plain dicts typed as TypedDicts, enums as ``str`` literals.

Plain dicts (not classes) because that is what the codec produces and consumes with no
conversion, what Faust tables store, and what handlers can build with a literal. The
``Literal`` types mirror the Avro enums; a test keeps them equal to the .avsc symbols.

Decoded records always carry every field. When encoding, fields that have a default in the
schema may be left out.

A ``ConversationEvent`` payload is one of several records; in Python it is a dict whose
``"type"`` key names the record (``{"type": "ReplyPlanned", ...}``), so code can branch on it
and type checkers narrow on it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, TypedDict

__all__ = [
    "RecordName",
    "RECORD_NAMES",
    "Platform",
    "ChatType",
    "UpdateKind",
    "ReplyKind",
    "DeliveryOutcome",
    "Attachment",
    "Update",
    "UpdateAccepted",
    "ReplyPlanned",
    "ReplyDelivered",
    "ReplyFailed",
    "StateChanged",
    "HandoffRequested",
    "HandoffReleased",
    "HandlerFailed",
    "EventPayload",
    "ConversationEvent",
    "Reply",
    "DeliveryResult",
    "QuarantineRecord",
    "ChatKey",
    "CHAT_KEY_SEPARATOR",
    "chat_key",
    "parse_chat_key",
]

RecordName = Literal["update", "conversation_event", "reply", "delivery_result", "quarantine"]
"""Names the codec knows records by: the .avsc file stems."""
RECORD_NAMES: tuple[RecordName, ...] = (
    "update",
    "conversation_event",
    "reply",
    "delivery_result",
    "quarantine",
)

Platform = Literal["telegram", "slack", "discord", "whatsapp", "generic"]
ChatType = Literal["private", "group", "supergroup", "channel", "thread", "unknown"]
UpdateKind = Literal[
    "message", "command", "callback", "edit", "reaction", "member", "interaction", "status", "other"
]
ReplyKind = Literal["text", "edit", "typing", "followup"]
DeliveryOutcome = Literal["delivered", "failed_permanent", "dead_lettered", "skipped_duplicate"]


class Attachment(TypedDict):
    kind: str
    mime_type: str | None
    size: int | None


class Update(TypedDict):
    """An inbound platform event (topic ``updates``); see update.avsc for field meanings."""

    platform: Platform
    bot_id: str
    chat_id: str
    chat_type: ChatType
    user_id: str | None
    update_id: str
    kind: UpdateKind
    text: str | None
    attachments: list[Attachment]
    reply_to: str | None
    thread_id: str | None
    locale: str | None
    platform_ts_ms: int | None
    received_at_ms: int
    correlation_id: str
    from_bot: bool
    platform_meta: dict[str, str]
    traceparent: str | None
    raw: bytes


class UpdateAccepted(TypedDict):
    type: Literal["UpdateAccepted"]
    update_id: str
    kind: UpdateKind
    user_id: str | None
    text: str | None
    locale: str | None


class ReplyPlanned(TypedDict):
    type: Literal["ReplyPlanned"]
    reply_id: str
    kind: ReplyKind
    text: str | None
    chat_seq: int


class ReplyDelivered(TypedDict):
    type: Literal["ReplyDelivered"]
    reply_id: str
    platform_message_id: str | None
    attempts: int


class ReplyFailed(TypedDict):
    type: Literal["ReplyFailed"]
    reply_id: str
    outcome: str
    reason: str


class StateChanged(TypedDict):
    type: Literal["StateChanged"]
    state_json: str


class HandoffRequested(TypedDict):
    type: Literal["HandoffRequested"]
    reason: str | None


class HandoffReleased(TypedDict):
    type: Literal["HandoffReleased"]
    by: str | None


class HandlerFailed(TypedDict):
    type: Literal["HandlerFailed"]
    update_id: str
    handler: str
    reason: str


EventPayload = (
    UpdateAccepted
    | ReplyPlanned
    | ReplyDelivered
    | ReplyFailed
    | StateChanged
    | HandoffRequested
    | HandoffReleased
    | HandlerFailed
)


class ConversationEvent(TypedDict):
    """One fact of a chat's history (topic ``messages``); the conversation table folds these."""

    event_id: str
    causation_id: str
    correlation_id: str
    chat_key: str
    at_ms: int
    payload: EventPayload


class Reply(TypedDict):
    """An action for a sink (topics ``replies``, ``replies.retry.N``, ``replies.dlq``)."""

    reply_id: str
    chat_key: str
    platform: Platform
    bot_id: str
    chat_id: str
    chat_type: ChatType
    kind: ReplyKind
    text: str | None
    markup: str | None
    options: dict[str, str]
    reply_to: str | None
    target_message_id: str | None
    thread_id: str | None
    chat_seq: int
    causation_id: str
    correlation_id: str
    update_received_at_ms: int
    created_at_ms: int
    attempt: int
    not_before_ms: int
    first_error: str | None
    last_error: str | None
    platform_meta: dict[str, str]
    traceparent: str | None


class DeliveryResult(TypedDict):
    """How a reply ended (topic ``deliveries``)."""

    reply_id: str
    chat_key: str
    platform: Platform
    bot_id: str
    outcome: DeliveryOutcome
    platform_message_id: str | None
    attempts: int
    latency_ms: int | None
    http_status: int | None
    error_code: str | None
    error: str | None
    at_ms: int
    correlation_id: str


class QuarantineRecord(TypedDict):
    """A record a stage could not decode or process (topic ``quarantine``)."""

    origin_topic: str
    origin_partition: int
    origin_offset: int
    origin_key: bytes | None
    stage: str
    error: str
    error_type: str
    raw: bytes
    at_ms: int


CHAT_KEY_SEPARATOR = ":"


# The `platform_meta` entries of an Update that its replies carry on (what a sink needs to answer
# in the same conversation: Discord's interaction follow-up token and application id, Slack's
# `response_url` of a slash command or interaction, used for ephemeral answers). Everything else stays
# behind.
REPLY_META_KEYS: frozenset[str] = frozenset({"interaction_token", "application_id", "response_url"})


class ChatKey(NamedTuple):
    platform: str
    bot_id: str
    chat_id: str


def chat_key(platform: str, bot_id: str, chat_id: str) -> str:
    """The Kafka key of every chat-path topic: ``"{platform}:{bot_id}:{chat_id}"``.

    ``platform`` and ``bot_id`` must not contain ``:`` (so the key parses back unambiguously);
    ``chat_id`` may, since it is the last part.
    """
    if CHAT_KEY_SEPARATOR in platform or CHAT_KEY_SEPARATOR in bot_id:
        raise ValueError(f"platform and bot_id must not contain ':' (got {platform!r}, {bot_id!r})")
    if not platform or not bot_id:
        raise ValueError("platform and bot_id must not be empty")
    return f"{platform}{CHAT_KEY_SEPARATOR}{bot_id}{CHAT_KEY_SEPARATOR}{chat_id}"


def parse_chat_key(key: str | bytes) -> ChatKey:
    """Split a chat key (``str`` or the raw Kafka key bytes) back into its parts."""
    text = key.decode("utf-8") if isinstance(key, bytes) else key
    parts = text.split(CHAT_KEY_SEPARATOR, 2)
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise ValueError(f"not a chat key: {text!r}")
    return ChatKey(parts[0], parts[1], parts[2])
