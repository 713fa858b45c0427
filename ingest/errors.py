"""Ingest's exceptions, under one root, each carrying the HTTP status the shell answers with.

    BotstreamError
    └── IngestError                 (500 if ever raised bare)
        ├── BadRequest            400  malformed JSON, no usable event
        ├── Unauthorized          401  bad / missing / stale signature, token mismatch (all platforms)
        ├── NotFound              404  unknown bot, or a bot of another platform
        ├── MethodNotAllowed      405  e.g. GET on a POST-only webhook (carries `allowed`)
        ├── PayloadTooLarge       413
        └── UnsupportedMediaType  415  JSON required but not sent

`retriable` errors (`botstream.ingest.sink.NotDurable`) are answered with a `Retry-After`: the platform
should deliver the same webhook again. The others are the sender's fault and repeat identically.

`reason` is a short, fixed, machine string ("signature_mismatch", "timestamp_stale", ...) meant as a
metric label, so it must stay low-cardinality. Messages are written by this package from fixed text
and non-secret facts only: never a credential, a signature or an expected value, so an error can be
logged or returned to the caller as is.
"""

from __future__ import annotations

from typing import ClassVar

from botstream.core.errors import BotstreamError


class IngestError(BotstreamError):
    status: ClassVar[int] = 500
    retriable: ClassVar[bool] = False

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


class BadRequest(IngestError):
    status = 400


class Unauthorized(IngestError):
    status = 401


class NotFound(IngestError):
    status = 404


class MethodNotAllowed(IngestError):
    status = 405

    def __init__(self, allowed: tuple[str, ...], message: str | None = None) -> None:
        self.allowed = allowed  # for the Allow header
        super().__init__("method_not_allowed", message or f"allowed: {', '.join(allowed)}")


class PayloadTooLarge(IngestError):
    status = 413


class UnsupportedMediaType(IngestError):
    status = 415
