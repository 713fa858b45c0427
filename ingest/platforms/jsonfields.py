"""Parse a verified body and read its fields by type, never by trust.

A valid signature proves who sent a body, not that it has the shape we expect: a field can be
missing, null, or of another type. The readers below return None instead of raising, so the
normalizers stay free of `isinstance` noise and can only fail through IngestError. Strings they
return are always UTF-8 encodable (JSON can smuggle lone surrogates through `\\ud800` escapes, which
would later break the Kafka key or the Avro encoder).
"""

from __future__ import annotations

import json
import re
from typing import Any

from botstream.ingest.errors import BadRequest

_DECIMAL = re.compile(r"[0-9]{1,20}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or BadRequest: call only after the signature has been verified."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest("malformed_json", "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("json_not_object", "body is JSON but not an object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def get_dict(obj: Any, key: str) -> dict[str, Any] | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def get_list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def get_dicts(obj: Any, key: str) -> list[dict[str, Any]]:
    return [item for item in get_list(obj, key) if isinstance(item, dict)]


def get_str(obj: Any, key: str) -> str | None:
    """A non-empty string field."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return clean_text(value) if isinstance(value, str) and value else None


def get_int(obj: Any, key: str) -> int | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def get_bool(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and obj.get(key) is True


def get_id(obj: Any, key: str) -> str | None:
    """An identifier sent as a string or an integer (platforms mix both), as a string."""
    number = get_int(obj, key)
    return str(number) if number is not None else get_str(obj, key)


def get_decimal(obj: Any, key: str) -> int | None:
    """An integer sent as an integer or a string of decimal digits (WhatsApp's timestamps)."""
    number = get_int(obj, key)
    if number is not None:
        return number
    text = get_str(obj, key)
    return int(text) if text is not None and _DECIMAL.fullmatch(text) else None


def clean_text(value: str) -> str:
    """`value`, with anything UTF-8 cannot encode (lone surrogates) replaced by U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value
