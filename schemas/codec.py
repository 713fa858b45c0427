"""Encode records to framed Avro bytes and back: the one codec every stage uses.

- ``encode`` writes the *current* schema of a record name, framed as Avro single-object
  encoding, or — when a schema registry is configured — in the Confluent wire format under
  subject ``<topic>-value`` (TopicNameStrategy).
- ``decode`` reads both framings whatever is configured, so a topic can move from one to the
  other without a flag day. A writer that was an older released version (looked up by
  fingerprint in ``schemas/history``, or fetched from the registry by id) is resolved to the
  current reader schema, so consumers always see the current shape.
- Every decoding failure is a :class:`~schemas.errors.DecodeError` carrying the raw bytes, so
  the caller quarantines with one ``except``.

The hot path (writer = current schema) runs functions compiled from the schema by
:mod:`botstream.schemas.binary_compiler`; fastavro does the rare schema-resolution path.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from fastavro import schemaless_reader
from fastavro.validation import ValidationError, validate

from botstream.schemas.binary_compiler import UNION_TAG, Encoder, compile_decoder, compile_encoder
from botstream.schemas.errors import (
    DecodeError,
    EncodeError,
    SchemaDefinitionError,
    UnknownSchemaError,
)
from botstream.schemas.framing import (
    SINGLE_OBJECT_HEADER_SIZE,
    SINGLE_OBJECT_MARKER,
    Framing,
    confluent_header,
    parse_frame,
    single_object_header,
)
from botstream.schemas.library import SchemaLibrary, SchemaVersion, describe_schema
from botstream.schemas.registry import SchemaRegistryClient

__all__ = ["Codec", "Decoded", "default_library"]

_ReadFn = Callable[[bytes, int], tuple[dict[str, Any], int]]


class Decoded(NamedTuple):
    """Result of :meth:`Codec.decode_any`: which record it is, and the record."""

    name: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Reader:
    """How to read bodies written by one writer schema into the current shape of ``name``."""

    name: str
    writer_version: int
    read: _ReadFn


@functools.cache
def default_library() -> SchemaLibrary:
    """The package's own schemas, loaded once per process."""
    return SchemaLibrary()


def _untag(value: Any) -> Any:
    """Turn fastavro's ``(fullname, record)`` union values into ``{"type": short, ...}`` dicts."""
    if isinstance(value, tuple):
        fullname, record = value
        return {UNION_TAG: fullname.rsplit(".", 1)[-1], **_untag(record)}
    if isinstance(value, dict):
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def _resolving_read(writer: SchemaVersion, reader: SchemaVersion) -> _ReadFn:
    """Read bodies of an older (or registry-only) writer schema as the current reader schema."""
    writer_schema, reader_schema = writer.parsed, reader.parsed

    def read(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        stream = io.BytesIO(data)
        stream.seek(pos)
        record = schemaless_reader(
            stream,
            writer_schema,
            reader_schema,
            return_record_name=True,
            return_record_name_override=True,
        )
        if not isinstance(record, dict):
            raise ValueError("body did not decode to a record")
        return _untag(record), stream.tell()

    return read


class Codec:
    """Encode/decode the project's records (plain dicts, see :mod:`botstream.schemas.records`).

    ``registry``: when given, ``encode`` writes the Confluent wire format and registers the
    current schema under ``<topic>-value``; the topic comes from ``encode(..., topic=)`` or the
    ``topics`` mapping (record name → default topic). Call :meth:`register_schemas` at start-up
    so registration (blocking HTTP) happens before the first record, not inside an event loop.

    Safe to share between threads: caches only grow, and compiled functions are pure.
    """

    def __init__(
        self,
        library: SchemaLibrary | None = None,
        *,
        registry: SchemaRegistryClient | None = None,
        topics: Mapping[str, str] | None = None,
    ) -> None:
        self.library = library if library is not None else default_library()
        self._registry = registry
        self._topics = dict(topics or {})
        self._encoders: dict[str, tuple[bytes, Encoder]] = {}
        self._by_fingerprint: dict[bytes, _Reader] = {}
        self._by_registry_id: dict[int, _Reader] = {}
        self._registry_headers: dict[tuple[str, str], bytes] = {}
        for name in self.library.names:
            current = self.library.current(name)
            self._encoders[name] = (
                single_object_header(current.fingerprint),
                compile_encoder(current.parsed),
            )
            self._by_fingerprint[current.fingerprint] = _Reader(
                name, current.version, compile_decoder(current.parsed)
            )
        for version in self.library.all_versions():
            if version.fingerprint not in self._by_fingerprint:
                current = self.library.current(version.name)
                read = _resolving_read(version, current)
                self._by_fingerprint[version.fingerprint] = _Reader(version.name, version.version, read)

    @property
    def names(self) -> tuple[str, ...]:
        return self.library.names

    # ------------------------------------------------------------------------------ encoding

    def encode(self, name: str, record: Mapping[str, Any], *, topic: str | None = None) -> bytes:
        """Encode ``record`` with the current schema of ``name``; raise EncodeError if it does not fit.

        With a registry configured this may raise RegistryUnavailableError (retriable) or
        RegistryRejectedError the first time a subject is used.
        """
        try:
            header, encoder = self._encoders[name]
        except KeyError:
            raise EncodeError(name, f"unknown record name; known: {', '.join(self._encoders)}") from None
        if self._registry is not None:
            header = self._registry_header(name, topic)
        try:
            return encoder(record, header)
        except Exception as exc:
            raise EncodeError(name, self._explain(name, record, exc)) from exc

    def register_schemas(self, topics: Mapping[str, str] | None = None) -> None:
        """Register the current schema of every (record name → topic) pair now.

        No-op without a registry. Defaults to the ``topics`` given to the constructor.
        """
        if self._registry is None:
            return
        for name, topic in (topics or self._topics).items():
            self._registry_header(name, topic)

    def _registry_header(self, name: str, topic: str | None) -> bytes:
        assert self._registry is not None
        topic = topic or self._topics.get(name)
        if topic is None:
            raise EncodeError(name, "a schema registry is configured but no topic is known: pass topic=")
        cache_key = (name, topic)
        header = self._registry_headers.get(cache_key)
        if header is None:
            current = self.library.current(name)
            schema_id = self._registry.register(f"{topic}-value", current.to_json())
            header = confluent_header(schema_id)
            self._by_registry_id[schema_id] = self._by_fingerprint[current.fingerprint]
            self._registry_headers[cache_key] = header
        return header

    def _explain(self, name: str, record: Any, exc: Exception) -> str:
        """Name the offending field when possible (fastavro's validator reports field paths)."""
        base = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyError):
            base = f"missing field {exc.args[0]!r}"
        try:
            validate(record, self.library.current(name).parsed, raise_errors=True)
        except ValidationError as detail:
            return f"{base} ({'; '.join(str(e)[:200] for e in detail.errors)})"
        except Exception:  # the validator choking on a malformed record adds nothing
            return base
        return base

    # ------------------------------------------------------------------------------ decoding

    def decode(self, name: str, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Decode bytes that must hold a ``name`` record; anything else raises DecodeError."""
        reader_name, record = self._decode(data)
        if reader_name != name:
            raise DecodeError(f"expected a record of {name!r}, got {reader_name!r}", bytes(data))
        return record

    def decode_any(self, data: bytes | bytearray | memoryview) -> Decoded:
        """Decode bytes holding any known record; tells which one it was."""
        return Decoded(*self._decode(data))

    def _decode(self, data: Any) -> tuple[str, dict[str, Any]]:
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise DecodeError(f"expected bytes, got {type(data).__name__}", b"")
            data = bytes(data)
        # Fast path for the common case; _reader_for_frame handles everything else.
        reader = None
        if data[:2] == SINGLE_OBJECT_MARKER:
            reader = self._by_fingerprint.get(data[2:SINGLE_OBJECT_HEADER_SIZE])
            offset = SINGLE_OBJECT_HEADER_SIZE
        if reader is None:
            reader, offset = self._reader_for_frame(data)
        try:
            record, end = reader.read(data, offset)
        except Exception as exc:
            raise DecodeError(
                f"cannot decode {reader.name} (writer v{reader.writer_version}): {type(exc).__name__}: {exc}",
                data,
            ) from exc
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing bytes after a {reader.name} record", data)
        return reader.name, record

    def _reader_for_frame(self, data: bytes) -> tuple[_Reader, int]:
        try:
            framing, ref, offset = parse_frame(data)
        except ValueError as exc:
            raise DecodeError(str(exc), data) from None
        if framing is Framing.SINGLE_OBJECT:
            assert isinstance(ref, bytes)
            reader = self._by_fingerprint.get(ref)
            if reader is None:
                raise UnknownSchemaError(
                    f"unknown writer schema fingerprint {ref.hex()} (not a current or released schema)", data
                )
            return reader, offset
        assert isinstance(ref, int)
        reader = self._by_registry_id.get(ref)
        if reader is None:
            reader = self._reader_for_registry_id(ref, data)
        return reader, offset

    def _reader_for_registry_id(self, schema_id: int, data: bytes) -> _Reader:
        if self._registry is None:
            raise UnknownSchemaError(
                f"Confluent-framed record (schema id {schema_id}) but no schema registry is configured", data
            )
        try:
            schema_json = self._registry.schema_by_id(schema_id)
        except DecodeError as exc:  # registry errors come without the record's bytes
            raise type(exc)(exc.reason, data) from exc
        try:
            writer = describe_schema(f"registry:{schema_id}", json.loads(schema_json), is_current=False)
        except (ValueError, SchemaDefinitionError) as exc:
            raise UnknownSchemaError(
                f"registry schema id {schema_id} is not a usable record schema: {exc}", data
            ) from exc
        reader = self._by_fingerprint.get(writer.fingerprint)
        if reader is None:
            current = self.library.by_fullname(writer.fullname)
            if current is None:
                raise UnknownSchemaError(
                    f"registry schema id {schema_id} is {writer.fullname}, for which there is no local schema",
                    data,
                )
            reader = _Reader(current.name, writer.version, _resolving_read(writer, current))
        self._by_registry_id[schema_id] = reader
        return reader
