"""The avro-* Faust codecs: registered by name, round trip, and decode errors faust can route."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from faust.exceptions import ValueDecodeError
from faust.serializers import codecs as faust_codecs
from faust.serializers.registry import Registry

from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError, UnknownSchemaError
from botstream.schemas.faust_codec import FAUST_CODECS, decode_error_for, faust_codec, register_faust_codecs
from tests.unit.schemas import samples


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def test_registers_a_codec_per_record(codec: Codec) -> None:
    registered = register_faust_codecs(codec)
    assert set(registered) == {
        "avro-update",
        "avro-conversation-event",
        "avro-reply",
        "avro-delivery-result",
        "avro-quarantine",
    }
    assert {cls.record_name for cls in FAUST_CODECS.values()} == set(codec.names)
    for name, instance in registered.items():
        assert faust_codecs.get_codec(name) is instance


@pytest.mark.parametrize(("name", "record"), samples.all_records())
def test_round_trip_through_faust_by_name(codec: Codec, name: str, record: dict[str, object]) -> None:
    register_faust_codecs(codec)
    faust_name = "avro-" + name.replace("_", "-")
    data = faust_codecs.dumps(faust_name, record)
    assert data == codec.encode(name, record)  # the same bytes as the project codec
    assert faust_codecs.loads(faust_name, data) == record


def test_chained_codec_keeps_the_project_codec(codec: Codec) -> None:
    chained = faust_codec("reply", codec) | faust_codecs.binary()
    assert chained.loads(chained.dumps(samples.reply())) == samples.reply()


def test_decode_failure_raises_the_project_error(codec: Codec) -> None:
    with pytest.raises(DecodeError):
        faust_codec("update", codec).loads(b"not avro")


def test_faust_wraps_it_and_decode_error_for_recovers_it_with_the_origin(codec: Codec) -> None:
    register_faust_codecs(codec)
    garbage = b"\xc3\x01" + b"\x07" * 8
    with pytest.raises(ValueDecodeError) as caught:
        Registry().loads_value(None, garbage, serializer="avro-update")
    message = _Message("botstream.updates", 2, 99, b"telegram:b:1", garbage)
    error = decode_error_for(caught.value, message)
    assert isinstance(error, UnknownSchemaError)
    assert (error.topic, error.partition, error.offset, error.key, error.raw) == (
        "botstream.updates",
        2,
        99,
        b"telegram:b:1",
        garbage,
    )
    assert (
        codec.decode("quarantine", codec.encode("quarantine", error.to_quarantine_record("streams", 1)))
        is not None
    )


def test_decode_error_for_a_foreign_failure_still_quarantines() -> None:
    message = _Message("botstream.replies", 0, 5, None, b"\x01\x02")
    error = decode_error_for(ValueDecodeError("json broke"), message)
    assert type(error) is DecodeError
    assert error.raw == b"\x01\x02" and "json broke" in error.reason and error.offset == 5


def test_unknown_record_name() -> None:
    with pytest.raises(KeyError, match="no Faust codec"):
        faust_codec("nope")
