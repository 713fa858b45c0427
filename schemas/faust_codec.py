"""Faust serializers backed by the project codec, one per record name.

Faust looks codecs up by name (``value_serializer="avro-update"``), so
:func:`register_faust_codecs` registers ``avro-update``, ``avro-conversation-event``,
``avro-reply``, ``avro-delivery-result`` and ``avro-quarantine``. For a topic whose
registry subject differs from the record's default topic (the retry and DLQ topics under a
registry), pass ``faust_codec("reply", codec, topic=...)`` as the serializer instead.

Decoding failures raise :class:`botstream.schemas.errors.DecodeError`. Faust wraps every serializer
error in its own ``ValueDecodeError`` (``raise ... from exc``) and hands it to the channel's
``on_value_decode_error(exc, message)``; :func:`decode_error_for` recovers our error from that
chain and attaches the message's origin, ready for ``to_quarantine_record``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Protocol

from faust.serializers import codecs as faust_codecs
from faust.types.codecs import CodecT

from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError

__all__ = [
    "AvroRecordCodec",
    "AvroUpdateCodec",
    "AvroConversationEventCodec",
    "AvroReplyCodec",
    "AvroDeliveryResultCodec",
    "AvroQuarantineCodec",
    "FAUST_CODECS",
    "faust_codec",
    "register_faust_codecs",
    "decode_error_for",
]


@functools.cache
def _default_codec() -> Codec:
    return Codec()


class AvroRecordCodec(faust_codecs.Codec):
    """Faust codec encoding one record name with a project :class:`Codec`.

    ``codec`` and ``topic`` travel in ``kwargs`` because Faust rebuilds codecs with
    ``type(self)(children=..., **self.kwargs)`` when they are chained.
    """

    record_name: ClassVar[str]

    def __init__(
        self,
        children: tuple[CodecT, ...] | None = None,
        *,
        codec: Codec | None = None,
        topic: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(children, codec=codec, topic=topic, **kwargs)
        self._codec = codec if codec is not None else _default_codec()
        self._topic = topic

    def _dumps(self, s: Any) -> bytes:
        return self._codec.encode(self.record_name, s, topic=self._topic)

    def _loads(self, s: bytes) -> Any:
        return self._codec.decode(self.record_name, s)


class AvroUpdateCodec(AvroRecordCodec):
    record_name = "update"


class AvroConversationEventCodec(AvroRecordCodec):
    record_name = "conversation_event"


class AvroReplyCodec(AvroRecordCodec):
    record_name = "reply"


class AvroDeliveryResultCodec(AvroRecordCodec):
    record_name = "delivery_result"


class AvroQuarantineCodec(AvroRecordCodec):
    record_name = "quarantine"


#: Faust codec name → codec class.
FAUST_CODECS: dict[str, type[AvroRecordCodec]] = {
    "avro-update": AvroUpdateCodec,
    "avro-conversation-event": AvroConversationEventCodec,
    "avro-reply": AvroReplyCodec,
    "avro-delivery-result": AvroDeliveryResultCodec,
    "avro-quarantine": AvroQuarantineCodec,
}
_BY_RECORD = {cls.record_name: cls for cls in FAUST_CODECS.values()}


def faust_codec(record_name: str, codec: Codec | None = None, *, topic: str | None = None) -> AvroRecordCodec:
    """A codec instance for ``record_name``, usable directly as a Faust ``value_serializer``."""
    try:
        cls = _BY_RECORD[record_name]
    except KeyError:
        raise KeyError(f"no Faust codec for record {record_name!r}; known: {', '.join(_BY_RECORD)}") from None
    return cls(codec=codec, topic=topic)


def register_faust_codecs(codec: Codec | None = None) -> dict[str, AvroRecordCodec]:
    """Register every ``avro-*`` codec with Faust (idempotent); return them by name.

    ``codec`` defaults to a process-wide single-object-encoding :class:`Codec`; pass one built
    with a registry (and its ``topics``) to write the Confluent wire format.
    """
    registered = {}
    for name, cls in FAUST_CODECS.items():
        instance = cls(codec=codec)
        faust_codecs.register(name, instance)
        registered[name] = instance
    return registered


class _MessageLike(Protocol):
    """The parts of ``faust.types.tuples.Message`` needed to locate a record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def decode_error_for(exc: BaseException, message: _MessageLike) -> DecodeError:
    """Our DecodeError behind a Faust decode error, with the message's origin attached.

    When the chain holds none (Faust failed before or after our codec), a DecodeError is made
    from the message's own bytes, so the caller can always quarantine.
    """
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, DecodeError):
        seen = seen.__cause__ or seen.__context__
    error = (
        seen
        if isinstance(seen, DecodeError)
        else DecodeError(f"{type(exc).__name__}: {exc}", message.value or b"")
    )
    return error.with_origin(message.topic, message.partition, message.offset, message.key)
