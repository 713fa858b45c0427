"""Structured logging: one JSON object per line, with service, bot, chat key and correlation ids.

Fields come from `extra={...}` on the log call. Known secrets (the bots' credentials) are registered
once at start-up and masked in every line as a last line of defence; code should not log them at all.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable

CONTEXT_FIELDS = ("service", "bot", "chat_key", "correlation_id", "reply_id", "update_id", "platform",
                  "topic", "partition", "offset", "reason", "status", "attempt", "delay_s")
_SECRETS: set[str] = set()
_SECRET_RE: re.Pattern[str] | None = None
_ENCODER = json.JSONEncoder(default=str)  # one encoder, not one per line


def register_secrets(values: Iterable[str]) -> None:
    global _SECRET_RE
    _SECRETS.update(v for v in values if v and len(v) >= 4)
    if _SECRETS:  # one pass over the line whatever the number of bots; longest first
        _SECRET_RE = re.compile("|".join(re.escape(s) for s in sorted(_SECRETS, key=len, reverse=True)))


def redact(text: str) -> str:
    return _SECRET_RE.sub("**********", text) if _SECRET_RE is not None else text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": round(record.created, 3), "level": record.levelname.lower(), "service": self.service,
            "logger": record.name, "msg": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(_ENCODER.encode(out))


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.Formatter.converter = time.gmtime
