"""Whatever bytes arrive, decoding fails only with DecodeError, carrying what quarantine needs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError, RegistryUnavailableError, SchemaError, UnknownSchemaError
from botstream.schemas.library import SchemaLibrary
from botstream.schemas.records import RECORD_NAMES
from tests.unit.schemas import samples


def _decode_or_decode_error(codec: Codec, data: bytes) -> None:
    try:
        record = codec.decode_any(data)
    except DecodeError as exc:
        assert exc.raw == data
        assert exc.reason
    else:
        assert isinstance(record.record, dict)


def test_every_truncation_is_a_decode_error(codec: Codec) -> None:
    data = codec.encode("update", samples.rich_update())
    for cut in range(len(data)):
        with pytest.raises(DecodeError) as caught:
            codec.decode("update", data[:cut])
        assert caught.value.raw == data[:cut]


def test_trailing_bytes_are_a_decode_error(codec: Codec) -> None:
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        codec.decode("reply", codec.encode("reply", samples.reply()) + b"\x00")


def test_unknown_fingerprint(codec: Codec) -> None:
    data = b"\xc3\x01" + b"\x01" * 8 + b"\x00"
    with pytest.raises(UnknownSchemaError, match="0101010101010101") as caught:
        codec.decode_any(data)
    assert caught.value.raw == data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty value"),
        (b'{"json": true}', "unknown framing"),
        (b"\xc3\x01\x00", "truncated single-object header"),
        (b"\x00\x00\x01", "truncated Confluent"),
    ],
)
def test_bad_framing(codec: Codec, data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        codec.decode_any(data)


def test_invalid_utf8_in_a_string_field(codec: Codec) -> None:
    data = bytearray(codec.encode("delivery_result", samples.delivery_result()))
    position = data.index(b"r-987654321-0")
    data[position] = 0xFF
    with pytest.raises(DecodeError, match="UnicodeDecodeError"):
        codec.decode("delivery_result", bytes(data))


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    _decode_or_decode_error(_CODEC, data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(RECORD_NAMES), body=st.binary(max_size=300))
def test_valid_header_with_arbitrary_body_raises_only_decode_error(
    library: SchemaLibrary, name: str, body: bytes
) -> None:
    header = b"\xc3\x01" + library.current(name).fingerprint
    _decode_or_decode_error(_CODEC, header + body)


@settings(max_examples=300)
@given(
    index=st.integers(min_value=10), byte=st.integers(0, 255), record=st.sampled_from(samples.all_records())
)
def test_corrupted_records_raise_only_decode_error(
    index: int, byte: int, record: tuple[str, dict[str, object]]
) -> None:
    data = bytearray(_CODEC.encode(*record))
    data[index % len(data)] = byte
    _decode_or_decode_error(_CODEC, bytes(data))


_CODEC = Codec()


def test_error_hierarchy_and_retry_data() -> None:
    assert issubclass(UnknownSchemaError, DecodeError)
    assert issubclass(RegistryUnavailableError, DecodeError)
    assert issubclass(DecodeError, SchemaError)
    assert RegistryUnavailableError("down", b"").retriable is True
    assert DecodeError("bad", b"").retriable is False
    assert UnknownSchemaError("?", b"").retriable is False


def test_decode_error_becomes_a_quarantine_record(codec: Codec) -> None:
    garbage = b"\xc3\x01" + b"\x02" * 12
    with pytest.raises(DecodeError) as caught:
        codec.decode("update", garbage)
    error = caught.value.with_origin("botstream.updates", 4, 1234, key=b"telegram:support:1")
    assert "botstream.updates[4]@1234" in str(error)
    record = error.to_quarantine_record(stage="dedupe", at_ms=1_700_000_000_000)
    assert record["raw"] == garbage and record["error_type"] == "UnknownSchemaError"
    # The quarantine record itself must be encodable.
    assert codec.decode("quarantine", codec.encode("quarantine", record)) == record


def test_quarantine_record_needs_an_origin() -> None:
    with pytest.raises(ValueError, match="with_origin"):
        DecodeError("bad", b"x").to_quarantine_record(stage="sink", at_ms=0)
