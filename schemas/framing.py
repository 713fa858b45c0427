"""Byte framing around an Avro body: which writer schema produced these bytes.

Two framings, told apart by the first byte, so a reader accepts both whatever it writes:

- **Avro single-object encoding** (default, needs no service): ``C3 01`` + the writer schema's
  8-byte CRC-64-AVRO fingerprint (little-endian) + body.
  https://avro.apache.org/docs/1.11.1/specification/#single-object-encoding
- **Confluent wire format** (when a schema registry is configured): ``00`` + 4-byte
  big-endian registry schema id + body.

Pure functions over bytes; no I/O.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "SINGLE_OBJECT_MARKER",
    "SINGLE_OBJECT_HEADER_SIZE",
    "CONFLUENT_MAGIC",
    "CONFLUENT_HEADER_SIZE",
    "Framing",
    "single_object_header",
    "confluent_header",
    "parse_frame",
]

SINGLE_OBJECT_MARKER = b"\xc3\x01"
SINGLE_OBJECT_HEADER_SIZE = 10
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_SIZE = 5


class Framing(Enum):
    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


def single_object_header(fingerprint: bytes) -> bytes:
    if len(fingerprint) != 8:
        raise ValueError("a CRC-64-AVRO fingerprint is 8 bytes")
    return SINGLE_OBJECT_MARKER + fingerprint


def confluent_header(schema_id: int) -> bytes:
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big", signed=True)


def parse_frame(data: bytes) -> tuple[Framing, bytes | int, int]:
    """Return (framing, fingerprint bytes or registry id, offset of the body).

    Raises ValueError saying what is wrong when the bytes carry neither framing.
    """
    if data[:2] == SINGLE_OBJECT_MARKER:
        if len(data) < SINGLE_OBJECT_HEADER_SIZE:
            raise ValueError("truncated single-object header")
        return Framing.SINGLE_OBJECT, data[2:10], SINGLE_OBJECT_HEADER_SIZE
    if data[:1] == CONFLUENT_MAGIC:
        if len(data) < CONFLUENT_HEADER_SIZE:
            raise ValueError("truncated Confluent wire-format header")
        return Framing.CONFLUENT, int.from_bytes(data[1:5], "big", signed=True), CONFLUENT_HEADER_SIZE
    if not data:
        raise ValueError("empty value")
    raise ValueError(
        f"unknown framing (first bytes {data[:2].hex()}): neither Avro single-object nor Confluent"
    )
