"""The `X-Hub-Signature-256: sha256=<hex>` scheme shared by WhatsApp (Meta) and GitHub-style senders:
HMAC-SHA256 of the raw body with a shared secret. Pure, so the sandbox can sign what ingest verifies.
"""

from __future__ import annotations

import hashlib
import hmac

from botstream.ingest.errors import Unauthorized
from botstream.ingest.platforms.base import constant_time_equal

HUB_SIGNATURE_HEADER = "x-hub-signature-256"
_PREFIX = "sha256="


def hub_signature(secret: str, body: bytes) -> str:
    """The header value a sender holding `secret` puts on `body`."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub_signature(secret: str, body: bytes, signature: str | None) -> None:
    """Raise Unauthorized unless `signature` is `sha256=<hex>` of `body` under `secret`.

    Hex case is not significant; anything else is (a missing prefix is a malformed signature).
    """
    if not signature:
        raise Unauthorized("signature_missing", "no X-Hub-Signature-256 header")
    received = signature.strip().lower()
    if not received.startswith(_PREFIX):
        raise Unauthorized("signature_malformed", "X-Hub-Signature-256 must be sha256=<hex>")
    if not constant_time_equal(hub_signature(secret, body), received):
        raise Unauthorized("signature_mismatch", "X-Hub-Signature-256 does not match the body")
