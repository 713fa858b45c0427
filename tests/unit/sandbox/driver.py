"""`Driver`: feeds requests to the sans-IO engine directly — no sockets, a clock that moves only
when told."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from botstream.sandbox.config import SandboxConfig
from botstream.sandbox.engine import Outcome, SandboxEngine
from botstream.sandbox.http import Request

WALL_START = 1_700_000_000.0


class Driver:
    def __init__(self, config: SandboxConfig) -> None:
        self.engine = SandboxEngine(config)
        self.now = 1_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def post(
        self,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        query: str = "",
        method: str = "POST",
        raw: bytes | None = None,
    ) -> Outcome:
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        if form is not None:
            body = urlencode(form).encode()
            hdrs["content-type"] = "application/x-www-form-urlencoded"
        elif raw is not None:
            body = raw
        else:
            body = json.dumps(payload).encode() if payload is not None else b""
            hdrs.setdefault("content-type", "application/json")
        req = Request(method, path, query, hdrs, body)
        return self.engine.handle(req, self.now, WALL_START + (self.now - 1_000.0))

    def json(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        out = self.post(*args, **kwargs)
        return out.reply.status, out.reply.json()
