"""Representative records of every schema, shaped like the ones the pipeline produces."""

from __future__ import annotations

from botstream.schemas.records import ConversationEvent, DeliveryResult, QuarantineRecord, Reply, Update

TELEGRAM_RAW = (
    b'{"update_id":987654321,"message":{"message_id":4711,"from":{"id":42,"is_bot":false,'
    b'"first_name":"Ada","language_code":"en"},"chat":{"id":123456789,"first_name":"Ada",'
    b'"type":"private"},"date":1700000000,"text":"hello there, how are you?"}}'
)


def update() -> Update:
    return {
        "platform": "telegram",
        "bot_id": "support",
        "chat_id": "123456789",
        "chat_type": "private",
        "user_id": "42",
        "update_id": "987654321",
        "kind": "message",
        "text": "hello there, how are you?",
        "attachments": [],
        "reply_to": None,
        "thread_id": None,
        "locale": "en",
        "platform_ts_ms": 1_700_000_000_000,
        "received_at_ms": 1_700_000_000_123,
        "correlation_id": "c0ffee00-1234-4567-89ab-0123456789ab",
        "from_bot": False,
        "platform_meta": {},
        "traceparent": None,
        "raw": TELEGRAM_RAW,
    }


def rich_update() -> Update:
    """Every optional part filled, non-ASCII text, large numbers."""
    return {
        **update(),
        "platform": "discord",
        "chat_type": "thread",
        "kind": "interaction",
        "text": "/weather Zürich ☀️",
        "attachments": [
            {"kind": "photo", "mime_type": "image/jpeg", "size": 3_000_000_000},
            {"kind": "location", "mime_type": None, "size": None},
        ],
        "reply_to": "4710",
        "thread_id": "1100000000000000001",
        "platform_meta": {"interaction_token": "aW50ZXJhY3Rpb24", "application_id": "9001"},
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "from_bot": True,
    }


def conversation_events() -> list[ConversationEvent]:
    base = {
        "event_id": "ev-1",
        "causation_id": "987654321",
        "correlation_id": "c0ffee00",
        "chat_key": "telegram:support:123456789",
        "at_ms": 1_700_000_000_200,
    }
    payloads = [
        {
            "type": "UpdateAccepted",
            "update_id": "987654321",
            "kind": "message",
            "user_id": "42",
            "text": "hi",
            "locale": None,
        },
        {"type": "ReplyPlanned", "reply_id": "r-1", "kind": "edit", "text": "hello!", "chat_seq": 7},
        {"type": "ReplyDelivered", "reply_id": "r-1", "platform_message_id": "4712", "attempts": 2},
        {
            "type": "ReplyFailed",
            "reply_id": "r-1",
            "outcome": "dead_lettered",
            "reason": "HTTP 403 bot was blocked",
        },
        {"type": "StateChanged", "state_json": '{"step": 2, "city": "Zürich"}'},
        {"type": "HandoffRequested", "reason": None},
        {"type": "HandoffReleased", "by": "operator-7"},
        {
            "type": "HandlerFailed",
            "update_id": "987654321",
            "handler": "bots.weather:on_message",
            "reason": "KeyError: 'city'",
        },
    ]
    return [{**base, "payload": payload} for payload in payloads]  # type: ignore[typeddict-item]


def reply() -> Reply:
    return {
        "reply_id": "r-987654321-0",
        "chat_key": "telegram:support:123456789",
        "platform": "telegram",
        "bot_id": "support",
        "chat_id": "123456789",
        "chat_type": "private",
        "kind": "text",
        "text": "Hello Ada!",
        "markup": '{"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}',
        "options": {"parse_mode": "HTML"},
        "reply_to": "4711",
        "target_message_id": None,
        "thread_id": None,
        "chat_seq": 12,
        "causation_id": "987654321",
        "correlation_id": "c0ffee00",
        "update_received_at_ms": 1_700_000_000_123,
        "created_at_ms": 1_700_000_000_180,
        "attempt": 3,
        "not_before_ms": 1_700_000_004_000,
        "first_error": "HTTP 429 retry after 3",
        "last_error": "timeout",
        "platform_meta": {},
        "traceparent": None,
    }


def delivery_result() -> DeliveryResult:
    return {
        "reply_id": "r-987654321-0",
        "chat_key": "telegram:support:123456789",
        "platform": "telegram",
        "bot_id": "support",
        "outcome": "delivered",
        "platform_message_id": "4712",
        "attempts": 1,
        "latency_ms": 230,
        "http_status": 200,
        "error_code": None,
        "error": None,
        "at_ms": 1_700_000_000_353,
        "correlation_id": "c0ffee00",
    }


def quarantine_record() -> QuarantineRecord:
    return {
        "origin_topic": "botstream.updates",
        "origin_partition": 3,
        "origin_offset": 2**40,
        "origin_key": b"telegram:support:123456789",
        "stage": "dedupe",
        "error": "unknown framing",
        "error_type": "DecodeError",
        "raw": b"\xff\xfe garbage",
        "at_ms": 1_700_000_000_999,
    }


def all_records() -> list[tuple[str, dict[str, object]]]:
    """(record name, record) for every schema, several per schema where shapes differ."""
    records: list[tuple[str, dict[str, object]]] = [
        ("update", dict(update())),
        ("update", dict(rich_update())),
        ("reply", dict(reply())),
        ("delivery_result", dict(delivery_result())),
        ("quarantine", dict(quarantine_record())),
    ]
    records += [("conversation_event", dict(event)) for event in conversation_events()]
    return records
