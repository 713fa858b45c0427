"""The shared contract: errors, the Update record, content-type and JSON handling, the registry."""

from __future__ import annotations

import pytest

from botstream.ingest.errors import (
    BadRequest,
    IngestError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import (
    UPDATE_FIELDS,
    attachment,
    check_body_size,
    check_content_type,
    constant_time_equal,
    new_update,
)
from botstream.ingest.platforms.jsonfields import get_decimal, get_id, get_str, parse_json_object

REQUIRED = {"platform": "telegram", "bot_id": "b", "chat_id": "1", "update_id": "u", "kind": "message",
            "received_at_ms": 5, "correlation_id": "c", "raw": b"{}"}


def test_every_error_has_its_status_and_reason() -> None:
    statuses = {BadRequest: 400, Unauthorized: 401, NotFound: 404, PayloadTooLarge: 413, UnsupportedMediaType: 415}
    for cls, status in statuses.items():
        error = cls("some_reason")
        assert isinstance(error, IngestError)
        assert (error.status, error.reason, str(error)) == (status, "some_reason", "some_reason")
    assert MethodNotAllowed(("GET", "POST")).status == 405


def test_new_update_fills_every_field_with_defaults() -> None:
    update = new_update(**REQUIRED)  # type: ignore[arg-type]
    assert tuple(update) == UPDATE_FIELDS
    assert update == {**REQUIRED, "chat_type": "unknown", "user_id": None, "text": None, "attachments": [],
                      "reply_to": None, "thread_id": None, "locale": None, "platform_ts_ms": None,
                      "from_bot": False, "platform_meta": {}, "traceparent": None}


@pytest.mark.parametrize("chat_id", ["", "a:b", ":"])
def test_chat_id_may_not_break_the_chat_key(chat_id: str) -> None:
    with pytest.raises(BadRequest) as caught:
        new_update(**{**REQUIRED, "chat_id": chat_id})  # type: ignore[arg-type]
    assert caught.value.reason == "invalid_chat_id"


def test_programming_errors_in_kind_or_chat_type_are_not_http_errors() -> None:
    with pytest.raises(ValueError):
        new_update(**{**REQUIRED, "kind": "shout"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        new_update(**REQUIRED, chat_type="room")  # type: ignore[arg-type]


def test_numbers_beyond_avro_long_become_none() -> None:
    assert new_update(**REQUIRED, platform_ts_ms=1 << 63)["platform_ts_ms"] is None  # type: ignore[arg-type]
    assert attachment("document", None, -(1 << 64))["size"] is None


@pytest.mark.parametrize("value", ["application/json", "application/json; charset=utf-8", " APPLICATION/JSON ;x=y"])
def test_json_content_types_pass(value: str) -> None:
    check_content_type({"content-type": value})


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "content_type_missing"), ({"content-type": " "}, "content_type_missing"),
    ({"content-type": "text/json"}, "content_type_not_json"),
    ({"content-type": "application/json-patch+json"}, "content_type_not_json"),
])
def test_other_content_types_are_415(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        check_content_type(headers)
    assert caught.value.reason == reason


def test_body_size_limit() -> None:
    check_body_size(10, None)
    check_body_size(10, 10)
    with pytest.raises(PayloadTooLarge):
        check_body_size(11, 10)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b"1e999999", b"Infinity", b'{"a": NaN}',
                                  b"\x00", b'{"n": ' + b"9" * 5000 + b"}", b'{"a": "\xff"}'])
def test_hostile_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json_object(body)


def test_field_readers_are_type_strict_and_utf8_safe() -> None:
    payload = parse_json_object(b'{"s": "a\\ud800b", "b": true, "n": 5, "d": "17", "f": 1.5, "e": ""}')
    assert get_str(payload, "s") == "a\ufffdb"
    assert (get_id(payload, "b"), get_id(payload, "n"), get_id(payload, "f"), get_id(payload, "e")) == (None, "5", None, None)
    assert (get_decimal(payload, "d"), get_decimal(payload, "s"), get_decimal(payload, "n")) == (17, None, 5)


def test_constant_time_equal_handles_non_ascii() -> None:
    assert constant_time_equal("ä", "ä") and not constant_time_equal("a", "ä")


def test_registry_has_one_adapter_per_platform() -> None:
    assert sorted(ADAPTERS) == ["discord", "generic", "slack", "telegram", "whatsapp"]
    assert all(adapter.platform == name for name, adapter in ADAPTERS.items())
    assert {name: a.max_body_bytes for name, a in ADAPTERS.items()}["whatsapp"] == 3 * 1024 * 1024
