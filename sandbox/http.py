"""The request/reply values that pass between the ASGI shell and the sans-IO core.

The core never sees ASGI: it gets a `Request` (headers already lower-cased and decoded) and returns
a `Reply` whose body is already encoded, so the shell's per-request work is two `send` calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Headers", "Reply", "Request", "bytes_reply", "json_reply", "json_str", "read_params"]

Headers = tuple[tuple[bytes, bytes], ...]

_JSON_CT = (b"content-type", b"application/json; charset=utf-8")


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: Headers = ()

    def with_headers(self, extra: Headers) -> Reply:
        return Reply(self.status, self.body, self.headers + extra) if extra else self

    def json(self) -> Any:
        """Decoded body; for tests and the control client."""
        return json.loads(self.body)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_reply(status: int, obj: Any, headers: Headers = ()) -> Reply:
    body = _ENCODER.encode(obj).encode()
    return Reply(status, body, (_JSON_CT, *headers))


def bytes_reply(status: int, body: bytes, headers: Headers = ()) -> Reply:
    """A reply whose JSON body the caller serialised itself (the hot success paths fill a byte
    template, about ten times cheaper than encoding a dict)."""
    return Reply(status, body, (_JSON_CT, *headers))


def json_str(value: str) -> bytes:
    """`value` as a JSON string literal, UTF-8 encoded."""
    return encode_basestring(value).encode()


def read_params(req: Request, *, with_query: bool = False) -> dict[str, Any] | None:
    """Body parameters from JSON or form encoding (plus the query string when asked, body wins).

    Returns None when the body claims JSON (or looks like it) but does not parse to an object.
    """
    params: dict[str, Any] = dict(parse_qsl(req.query)) if with_query and req.query else {}
    body = req.body
    if not body:
        return params
    ctype = req.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params
    try:
        obj = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    params.update(obj)
    return params
