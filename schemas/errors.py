"""Errors raised by the schemas package.

Every failure to turn bytes into a record is a :class:`DecodeError`, whatever caused it
(garbage, truncation, a fingerprint nobody knows, an unreachable registry), so a consumer
needs exactly one ``except`` to route a bad record to quarantine. The error carries the raw
bytes and, once the consumer attaches it, the record's origin — everything a
``QuarantineRecord`` needs.

Hierarchy::

    SchemaError                       root; retriable = False
    ├── SchemaDefinitionError         an .avsc file is invalid or uses an unsupported construct
    ├── EncodeError                   a record does not fit its schema (a bug in the producer)
    ├── RegistryRejectedError         the registry refused a schema (e.g. 409 incompatible)
    └── DecodeError                   bytes could not be decoded → quarantine them
        ├── UnknownSchemaError        framing is fine but the writer schema is unknown
        └── RegistryUnavailableError  registry unreachable / 5xx; retriable = True

``retriable`` is data on the class (as in aiokafka), so a consumer tells the two apart with one
``except DecodeError``: bytes that will never decode go to quarantine, while a retriable error (the
registry is down, the bytes are probably fine) is tried again later — ``botstream replay`` stops
rather than fold the conversations without the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from botstream.schemas.records import QuarantineRecord

__all__ = [
    "SchemaError",
    "SchemaDefinitionError",
    "EncodeError",
    "RegistryRejectedError",
    "DecodeError",
    "UnknownSchemaError",
    "RegistryUnavailableError",
]


class SchemaError(Exception):
    """Root of every error this package raises."""

    retriable: bool = False


class SchemaDefinitionError(SchemaError):
    """A schema file is malformed or uses a construct the codec does not support."""


class EncodeError(SchemaError):
    """A record does not match its schema; raised by ``Codec.encode``.

    Not a decode problem: it means the producing code built a wrong dict, so it should fail
    loudly in tests rather than be quarantined.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"cannot encode {name}: {reason}")
        self.name = name
        self.reason = reason


class RegistryRejectedError(SchemaError):
    """The schema registry answered, but refused the request (4xx other than 404)."""

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class DecodeError(SchemaError):
    """Bytes that could not be decoded into a record.

    ``raw`` is the exact input, ``reason`` says why. ``topic``/``partition``/``offset``/``key``
    are unknown to the codec; the consumer attaches them with :meth:`with_origin` before
    quarantining.
    """

    def __init__(
        self,
        reason: str,
        raw: bytes,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key

    def with_origin(self, topic: str, partition: int, offset: int, key: bytes | None = None) -> Self:
        """Attach where the bytes came from; returns ``self`` so it chains in a ``raise``."""
        self.topic, self.partition, self.offset, self.key = topic, partition, offset, key
        return self

    def to_quarantine_record(self, stage: str, at_ms: int) -> QuarantineRecord:
        """Build the ``QuarantineRecord`` for these bytes; origin must have been attached."""
        if self.topic is None or self.partition is None or self.offset is None:
            raise ValueError("attach the origin with with_origin() before quarantining")
        return {
            "origin_topic": self.topic,
            "origin_partition": self.partition,
            "origin_offset": self.offset,
            "origin_key": self.key,
            "stage": stage,
            "error": self.reason,
            "error_type": type(self).__name__,
            "raw": self.raw,
            "at_ms": at_ms,
        }

    def __str__(self) -> str:
        origin = ""
        if self.topic is not None:
            origin = f" (from {self.topic}[{self.partition}]@{self.offset})"
        return f"{self.reason}{origin}"


class UnknownSchemaError(DecodeError):
    """The bytes name a writer schema (fingerprint or registry id) that cannot be found."""


class RegistryUnavailableError(DecodeError):
    """The schema registry could not be reached or failed (timeout, refused, 5xx).

    Retriable: the bytes are probably fine and will decode once the registry is back. Also
    raised by ``Codec.encode`` when a schema cannot be registered, with ``raw`` empty.
    """

    retriable = True
