"""The compiled encoders/decoders agree byte for byte with fastavro, the reference."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botstream.schemas.binary_compiler import compile_decoder, compile_encoder
from botstream.schemas.errors import SchemaDefinitionError
from botstream.schemas.library import SchemaLibrary
from botstream.schemas.records import RECORD_NAMES
from tests.unit.schemas import samples, strategies

# Every construct the compiler supports, nested.
KITCHEN_SINK: dict[str, Any] = parse_schema(  # type: ignore[assignment]
    {
        "type": "record",
        "name": "Sink",
        "namespace": "test",
        "fields": [
            {"name": "b", "type": "boolean"},
            {"name": "i", "type": "int"},
            {"name": "l", "type": "long"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "s", "type": "string"},
            {"name": "y", "type": "bytes"},
            {"name": "x", "type": {"type": "fixed", "name": "Four", "size": 4}},
            {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["red", "green"]}},
            {"name": "e2", "type": "Color"},
            {"name": "n", "type": "null"},
            {"name": "a", "type": {"type": "array", "items": {"type": "map", "values": ["null", "double"]}}},
            {
                "name": "r",
                "type": [
                    "null",
                    {"type": "record", "name": "A", "fields": [{"name": "v", "type": "Color"}]},
                    {
                        "type": "record",
                        "name": "B",
                        "fields": [{"name": "v", "type": {"type": "array", "items": "Four"}}],
                    },
                ],
            },
            {
                "name": "o",
                "type": [
                    "null",
                    {"type": "record", "name": "Opt", "fields": [{"name": "z", "type": "long"}]},
                ],
            },
            {"name": "t", "type": {"type": "long"}, "default": 0},
        ],
    }
)


def _fastavro_bytes(schema: Any, record: Any) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def _fastavro_read(schema: Any, data: bytes) -> Any:
    return schemaless_reader(
        io.BytesIO(data), schema, None, return_record_name=True, return_record_name_override=True
    )


_compiled: dict[int, tuple[Any, Any]] = {}


def _check_against_fastavro(schema: Any, record: dict[str, Any]) -> None:
    if id(schema) not in _compiled:
        _compiled[id(schema)] = (compile_encoder(schema), compile_decoder(schema))
    encode, decode = _compiled[id(schema)]
    project_form = strategies.to_project_form(record)
    reference = _fastavro_bytes(schema, record)
    assert encode(project_form) == reference
    decoded, end = decode(reference, 0)
    assert end == len(reference)
    assert decoded == strategies.to_project_form(_fastavro_read(schema, reference))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_kitchen_sink_matches_fastavro(data: st.DataObject) -> None:
    _check_against_fastavro(KITCHEN_SINK, data.draw(strategies.records(KITCHEN_SINK)))


@pytest.mark.parametrize("name", RECORD_NAMES)
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_project_schemas_match_fastavro(library: SchemaLibrary, name: str, data: st.DataObject) -> None:
    schema = library.current(name).parsed
    _check_against_fastavro(schema, data.draw(strategies.records(schema)))


@pytest.mark.parametrize(("name", "record"), samples.all_records())
def test_sample_records_match_fastavro(library: SchemaLibrary, name: str, record: dict[str, Any]) -> None:
    schema = library.current(name).parsed
    encoded = compile_encoder(schema)(record)
    decoded, _ = compile_decoder(schema)(encoded, 0)
    assert decoded == record
    assert strategies.to_project_form(_fastavro_read(schema, encoded)) == record


def test_prefix_is_prepended_without_changing_the_body(library: SchemaLibrary) -> None:
    encode = compile_encoder(library.current("update").parsed)
    assert encode(samples.update(), b"HDR") == b"HDR" + encode(samples.update())


def test_missing_fields_take_schema_defaults(library: SchemaLibrary) -> None:
    schema = library.current("reply").parsed
    minimal = {
        k: v for k, v in samples.reply().items() if k not in ("options", "attempt", "chat_seq", "traceparent")
    }
    decoded, _ = compile_decoder(schema)(compile_encoder(schema)(minimal), 0)
    assert (decoded["options"], decoded["attempt"], decoded["chat_seq"], decoded["traceparent"]) == (
        {},
        0,
        0,
        None,
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("bot_id", None, AttributeError),
        ("bot_id", b"bytes", AttributeError),
        ("raw", "text", TypeError),
        ("received_at_ms", "1", TypeError),
        ("received_at_ms", 2**63, OverflowError),
        ("from_bot", 1, TypeError),
        ("kind", "nope", ValueError),
        ("attachments", "not a list", TypeError),
    ],
)
def test_wrong_values_raise(library: SchemaLibrary, field: str, value: Any, error: type[Exception]) -> None:
    encode = compile_encoder(library.current("update").parsed)
    with pytest.raises(error):
        encode({**samples.update(), field: value})


def test_int_range_is_enforced() -> None:
    schema: Any = parse_schema({"type": "record", "name": "R", "fields": [{"name": "i", "type": "int"}]})
    with pytest.raises(OverflowError):
        compile_encoder(schema)({"i": 2**31})


@pytest.mark.parametrize(
    "union",
    [
        ["string", "long"],
        ["null", "string", "long"],
        ["null", {"type": "record", "name": "A", "fields": []}, "string"],
    ],
)
def test_unsupported_unions_are_rejected_when_compiling(union: list[Any]) -> None:
    schema: Any = parse_schema({"type": "record", "name": "R", "fields": [{"name": "u", "type": union}]})
    with pytest.raises(SchemaDefinitionError, match="unions"):
        compile_encoder(schema)


def test_union_record_with_a_type_field_is_rejected() -> None:
    branches = [
        {"type": "record", "name": "A", "fields": [{"name": "type", "type": "string"}]},
        {"type": "record", "name": "B", "fields": []},
    ]
    schema: Any = parse_schema({"type": "record", "name": "R", "fields": [{"name": "u", "type": branches}]})
    with pytest.raises(SchemaDefinitionError, match="'type'"):
        compile_decoder(schema)


def test_recursive_records_are_rejected_when_compiling() -> None:
    schema: Any = parse_schema(
        {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    )
    with pytest.raises(SchemaDefinitionError, match="recursive"):
        compile_encoder(schema)
    with pytest.raises(SchemaDefinitionError, match="recursive"):
        compile_decoder(schema)
