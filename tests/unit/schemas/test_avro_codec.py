"""Codec round trips, single-object framing, and older writers resolved to the current schema."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError, EncodeError, UnknownSchemaError
from botstream.schemas.framing import confluent_header
from botstream.schemas.library import VERSION_ATTRIBUTE, SchemaLibrary
from tests.unit.schemas import samples


@pytest.mark.parametrize(("name", "record"), samples.all_records())
def test_round_trip(codec: Codec, name: str, record: dict[str, Any]) -> None:
    data = codec.encode(name, record)
    assert codec.decode(name, data) == record
    assert codec.decode_any(data) == (name, record)


def test_single_object_framing_is_marker_fingerprint_body(codec: Codec, library: SchemaLibrary) -> None:
    definition = dict(library.current("update").definition)
    expected_fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(definition), "CRC-64-AVRO"))
    body = io.BytesIO()
    schemaless_writer(body, library.current("update").parsed, samples.update())
    assert codec.encode("update", samples.update()) == b"\xc3\x01" + expected_fp + body.getvalue()


def test_a_typical_update_is_compact(codec: Codec) -> None:
    data = codec.encode("update", samples.update())
    json_size = len(json.dumps({**samples.update(), "raw": samples.TELEGRAM_RAW.decode()}))
    assert len(data) < json_size * 0.7


def test_decode_accepts_bytearray_and_memoryview(codec: Codec) -> None:
    data = codec.encode("reply", samples.reply())
    assert codec.decode("reply", bytearray(data)) == samples.reply()
    assert codec.decode("reply", memoryview(data)) == samples.reply()


def test_decoding_as_the_wrong_record_is_a_decode_error(codec: Codec) -> None:
    data = codec.encode("reply", samples.reply())
    with pytest.raises(DecodeError, match="expected a record of 'update', got 'reply'") as caught:
        codec.decode("update", data)
    assert caught.value.raw == data


def test_tombstone_is_a_decode_error(codec: Codec) -> None:
    with pytest.raises(DecodeError, match="expected bytes, got NoneType"):
        codec.decode("update", None)  # type: ignore[arg-type]


def test_encode_names_the_bad_field(codec: Codec) -> None:
    with pytest.raises(EncodeError, match="chat_id"):
        codec.encode("update", {**samples.update(), "chat_id": 123456789})
    with pytest.raises(EncodeError, match="missing field 'update_id'"):
        codec.encode("update", {k: v for k, v in samples.update().items() if k != "update_id"})


def test_encode_unknown_record_name(codec: Codec) -> None:
    with pytest.raises(EncodeError, match="unknown record name"):
        codec.encode("nope", {})


def test_payload_branch_must_be_tagged(codec: Codec) -> None:
    event = samples.conversation_events()[0]
    untagged = {k: v for k, v in event["payload"].items() if k != "type"}
    with pytest.raises(EncodeError, match="type"):
        codec.encode("conversation_event", {**event, "payload": untagged})


def test_confluent_frame_without_registry_is_unknown_schema(codec: Codec) -> None:
    data = confluent_header(7) + b"\x00"
    with pytest.raises(UnknownSchemaError, match="no schema registry is configured"):
        codec.decode_any(data)


# ------------------------------------------------------------------ older writers → current reader


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _write_library(
    root: Path, current: dict[str, dict[str, Any]], history: list[tuple[str, dict[str, Any]]]
) -> SchemaLibrary:
    root.mkdir(parents=True)
    for name, definition in current.items():
        (root / f"{name}.avsc").write_text(json.dumps(definition))
    for name, definition in history:
        folder = root / "history" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{definition[VERSION_ATTRIBUTE]}.avsc").write_text(json.dumps(definition))
    return SchemaLibrary(root)


@pytest.fixture()
def evolved(tmp_path: Path, library: SchemaLibrary) -> tuple[Codec, Codec]:
    """(codec of release 1, codec of release 2) where release 2 added fields with defaults."""
    v1_update = copy.deepcopy(dict(library.current("update").definition))
    v1_update["fields"] = [
        f for f in v1_update["fields"] if f["name"] not in ("traceparent", "platform_meta")
    ]
    v1_event = copy.deepcopy(dict(library.current("conversation_event").definition))
    accepted = next(b for b in _field(v1_event, "payload")["type"] if b["name"] == "UpdateAccepted")
    accepted["fields"] = [f for f in accepted["fields"] if f["name"] != "locale"]
    v2_update = {**copy.deepcopy(dict(library.current("update").definition)), VERSION_ATTRIBUTE: 2}
    v2_event = {**copy.deepcopy(dict(library.current("conversation_event").definition)), VERSION_ATTRIBUTE: 2}
    release1 = _write_library(
        tmp_path / "r1",
        {"update": v1_update, "conversation_event": v1_event},
        [("update", v1_update), ("conversation_event", v1_event)],
    )
    release2 = _write_library(
        tmp_path / "r2",
        {"update": v2_update, "conversation_event": v2_event},
        [
            ("update", v1_update),
            ("update", v2_update),
            ("conversation_event", v1_event),
            ("conversation_event", v2_event),
        ],
    )
    return Codec(release1), Codec(release2)


def test_old_writer_is_resolved_to_the_current_schema(evolved: tuple[Codec, Codec]) -> None:
    old, new = evolved
    record = {k: v for k, v in samples.update().items() if k not in ("traceparent", "platform_meta")}
    decoded = new.decode("update", old.encode("update", record))
    assert decoded == {**record, "traceparent": None, "platform_meta": {}}


def test_old_writer_union_payload_is_resolved_and_tagged(evolved: tuple[Codec, Codec]) -> None:
    old, new = evolved
    event = samples.conversation_events()[0]
    old_payload = {k: v for k, v in event["payload"].items() if k != "locale"}
    decoded = new.decode(
        "conversation_event", old.encode("conversation_event", {**event, "payload": old_payload})
    )
    assert decoded["payload"] == {**old_payload, "locale": None}
    planned = samples.conversation_events()[1]
    assert new.decode("conversation_event", old.encode("conversation_event", planned)) == planned


def test_old_reader_does_not_know_a_newer_fingerprint(evolved: tuple[Codec, Codec]) -> None:
    """Single-object encoding cannot read the future: the record goes to quarantine intact."""
    old, new = evolved
    data = new.encode("update", samples.update())
    with pytest.raises(UnknownSchemaError) as caught:
        old.decode("update", data)
    assert caught.value.raw == data and not caught.value.retriable
