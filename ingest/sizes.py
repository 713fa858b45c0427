"""The size contract at the front door: refuse (413) a webhook whose records a later stage could not write.

The limits are the topic catalog's (`botstream.schemas.topics`, `TopicSpec.max_message_bytes`), never a
number of ours. For every Update of a request ingest checks, before producing anything:

- the Update record itself against `updates` and `handoff` (streams copies an Update of a chat in
  handoff to that topic as it is);
- the `UpdateAccepted` event streams writes to `messages` for it: it copies the update id, kind, user,
  text and locale;
- a reply quoting the update's text on `replies`: what an echo-like handler plans, carrying the
  update's ids, thread and reply meta (`REPLY_META_KEYS`). The catalog keeps room above `replies` on
  the retry and dead-letter topics, so that reply can also be retried and dead-lettered.

The derived records are built as `botstream.streams.processor` builds them (same fields, same id
lengths) and encoded with the single-object framing, which is never smaller than a registry's; a unit
test checks the estimate against streams' own records. Most updates are far below every limit: the
derived records differ from the Update by a few ids, so unless the Update's own size comes within
`DERIVED_SLACK_BYTES` (plus its id and key) of a derived limit nothing else is encoded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botstream.ingest.errors import PayloadTooLarge
from botstream.schemas.binary_compiler import UNION_TAG
from botstream.schemas.codec import Codec
from botstream.schemas.records import REPLY_META_KEYS
from botstream.schemas.topics import CatalogSettings, record_wire_bytes, spec_of

ID_HEX = "0" * 32  # event and reply ids are 32 hex digits (botstream.streams.processor.stable_id)
DERIVED_SLACK_BYTES = 256  # what a derived record adds beyond its ids and key: numbers, enums, framing


@dataclass
class SizeContract:
    """The record limits a webhook's Updates must respect, read from the catalog once."""

    update_limit: int  # min(updates, handoff)
    event_limit: int  # messages
    reply_limit: int  # replies
    codec: Codec = field(default_factory=Codec, compare=False, repr=False)

    @classmethod
    def from_catalog(cls, settings: CatalogSettings) -> SizeContract:
        def limit(suffix: str) -> int:
            return spec_of(settings, suffix).max_message_bytes

        return cls(update_limit=min(limit("updates"), limit("handoff")), event_limit=limit("messages"),
                   reply_limit=limit("replies"))

    def check(self, update: dict[str, Any], key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Raise PayloadTooLarge (413) naming the first topic the update or a record derived from it
        would not fit."""
        size = record_wire_bytes(key, value, headers)
        if size > self.update_limit:
            raise PayloadTooLarge("too_large_for_updates",
                                  f"an update of {size} bytes exceeds the {self.update_limit}-byte record limit")
        slack = DERIVED_SLACK_BYTES + len(update["update_id"].encode()) + len(key)
        if size + slack <= min(self.event_limit, self.reply_limit):
            return
        chat = key.decode()
        event = record_wire_bytes(key, self.codec.encode("conversation_event", accepted_event(update, chat)), headers)
        if event > self.event_limit:
            raise PayloadTooLarge("too_large_for_messages",
                                  f"its UpdateAccepted event of {event} bytes exceeds the {self.event_limit}-byte limit")
        reply = record_wire_bytes(key, self.codec.encode("reply", quoting_reply(update, chat)), headers)
        if reply > self.reply_limit:
            raise PayloadTooLarge("too_large_for_replies",
                                  f"a reply quoting its text ({reply} bytes) exceeds the {self.reply_limit}-byte limit")


def accepted_event(update: dict[str, Any], chat: str) -> dict[str, Any]:
    """The `UpdateAccepted` ConversationEvent streams writes for `update` (its fields and id lengths)."""
    return {
        "event_id": ID_HEX, "causation_id": update["update_id"], "correlation_id": update.get("correlation_id") or "",
        "chat_key": chat, "at_ms": _now_ms(),
        "payload": {UNION_TAG: "UpdateAccepted", "update_id": update["update_id"], "kind": update["kind"],
                    "user_id": update.get("user_id"), "text": update.get("text"), "locale": update.get("locale")},
    }


def quoting_reply(update: dict[str, Any], chat: str) -> dict[str, Any]:
    """A Reply as streams builds it for `update`, with the update's own text as the reply's."""
    meta = {k: v for k, v in (update.get("platform_meta") or {}).items() if k in REPLY_META_KEYS}
    now = _now_ms()
    return {
        "reply_id": ID_HEX, "chat_key": chat, "platform": update["platform"], "bot_id": update["bot_id"],
        "chat_id": update["chat_id"], "chat_type": update.get("chat_type", "unknown"), "kind": "followup",
        "text": update.get("text"), "markup": None, "options": {}, "reply_to": None, "target_message_id": None,
        "thread_id": update.get("thread_id"), "chat_seq": 1 << 62, "causation_id": update["update_id"],
        "correlation_id": update.get("correlation_id") or "", "update_received_at_ms": now, "created_at_ms": now,
        "attempt": 0, "not_before_ms": 0, "first_error": None, "last_error": None, "platform_meta": meta,
        "traceparent": update.get("traceparent"),
    }


def _now_ms() -> int:
    return int(time.time() * 1000)
