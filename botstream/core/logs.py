"""Structured logging: one JSON object per line, with service, bot, chat key and correlation ids.

Every line has `ts` (ISO 8601, UTC, milliseconds: `2026-12-02T09:15:03.042Z`), `level`, `service`,
`logger` and `msg`; context fields come from `extra={...}` on the log call (`CONTEXT_FIELDS`). An
exception is three fields, never a multi-line blob: `exc_type`, `exc_message` and `exc_traceback`
(a list of lines). Known secrets (the bots' credentials) are registered once at start-up and masked
in every line as a last line of defence; code should not log them at all.

One formatter for everything a process logs: `setup_logging` puts it on the root logger, so Faust,
mode, aiokafka and uvicorn lines (which propagate to the root) come out the same way, and
librdkafka's lines do too once a confluent-kafka client is given `logger=LIBRDKAFKA_LOGGER`
(`botstream.core.kafka.client_logger_config`): they carry `kafka_facility` and `kafka_client`.
Faust's terminal spinner writes escape codes to stdout, past logging: `quiet_faust_worker` turns it
off.

Per-record work logs at DEBUG; `SampledSummary` adds one INFO line per interval with the counts,
so INFO stays readable at thousands of records a second.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

CONTEXT_FIELDS = ("service", "bot", "chat_key", "correlation_id", "reply_id", "update_id", "platform",
                  "topic", "partition", "offset", "reason", "status", "attempt", "delay_s",
                  "what", "counts", "total", "interval_s", "rate_per_s", "kafka_facility", "kafka_client")
#: the logger confluent-kafka clients hand librdkafka's log lines to (see botstream.core.kafka)
LIBRDKAFKA_LOGGER = "botstream.librdkafka"
MASK = "**********"
# scheme://user[:password]@ -> the user is kept (it names an account), the password masked; a token
# written as the user alone (https://TOKEN@host) is masked whole
_URL_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^:@/\s,]*)(?::([^@/\s,]*))?@")
_SECRETS: set[str] = set()
_SECRET_RE: re.Pattern[str] | None = None
_ENCODER = json.JSONEncoder(default=str)  # one encoder, not one per line
# CSI / OSC escape sequences and the C0 controls other than tab and newline (Faust's spinner, colours)
_CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def register_secrets(values: Iterable[str]) -> None:
    global _SECRET_RE
    _SECRETS.update(v for v in values if v and len(v) >= 4)
    if _SECRETS:  # one pass over the line whatever the number of bots; longest first
        _SECRET_RE = re.compile("|".join(re.escape(s) for s in sorted(_SECRETS, key=len, reverse=True)))


def redact(text: str) -> str:
    """`text` with the registered secrets and the passwords of URLs masked."""
    if "://" in text and "@" in text:
        text = mask_url(text)
    return _SECRET_RE.sub(MASK, text) if _SECRET_RE is not None else text


def mask_url(url: str) -> str:
    """`url` with the password of its userinfo masked (`https://user:**********@host/`); also in a
    comma-separated list of URLs. Anything that is no URL with credentials comes back unchanged."""
    return _URL_USERINFO_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@" if m.group(3) is not None
                                else f"{m.group(1)}{MASK}@", url)


def mask_urls(value: Any) -> Any:
    """`value` (str, or dicts and lists of them, as `config show` prints) with every URL's userinfo masked."""
    if isinstance(value, str):
        return mask_url(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: mask_urls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_urls(v) for v in value]
    return value


def strip_control(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tabs and newlines stay)."""
    return _CONTROL_RE.sub("", text)


def iso_utc(created: float) -> str:
    """`created` (a unix time) as ISO 8601 in UTC with milliseconds: 2026-12-02T09:15:03.042Z."""
    whole = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((created - whole) * 1000):03d}Z"


def exception_fields(exc_info: Any) -> dict[str, object]:
    """An exception as fields: `exc_type` (qualified unless builtin), `exc_message`, and
    `exc_traceback`, the formatted traceback (causes included) as a list of lines."""
    etype, value, tb = exc_info
    if etype is None:
        return {}
    module = getattr(etype, "__module__", "builtins")
    name = etype.__qualname__ if module == "builtins" else f"{module}.{etype.__qualname__}"
    lines = [line for chunk in traceback.format_exception(etype, value, tb) for line in chunk.rstrip("\n").split("\n")]
    return {"exc_type": name, "exc_message": str(value), "exc_traceback": lines}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": iso_utc(record.created), "level": record.levelname.lower(), "service": self.service,
            "logger": record.name, "msg": strip_control(record.getMessage()),
        }
        if record.name == LIBRDKAFKA_LOGGER and isinstance(record.args, tuple) and len(record.args) == 3:
            facility, client, text = record.args  # confluent-kafka logs ("%s [%s] %s", fac, name, buf)
            out["msg"], out["kafka_facility"], out["kafka_client"] = strip_control(str(text)), facility, client
        for key in CONTEXT_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out.update(exception_fields(record.exc_info))
        if record.stack_info:
            out["stack"] = record.stack_info.split("\n")
        return redact(_ENCODER.encode(out))  # JSON escapes any control character left


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s.%(msecs)03dZ {service} %(levelname)s %(name)s: %(message)s",
                         datefmt="%Y-%m-%dT%H:%M:%S")
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        return redact(strip_control(super().format(record)))


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Our formatter on the root logger (everything propagates to it), at `level`; Python warnings
    become log lines too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)


def quiet_faust_worker(worker: Any) -> Any:
    """A `faust.Worker` that writes nothing to the terminal itself: no progress spinner (it writes
    cursor escape codes and backspaces to stdout even when stdout is a file) and no banner; its
    "Ready" goes through logging instead. Call right after constructing it; returns it."""
    worker.spinner = None
    worker.quiet = True
    return worker


class SampledSummary:
    """Per-record lines at DEBUG, and one INFO summary per interval with the counts.

        summary = SampledSummary(log, "updates", every_s=30)
        ...
        summary.record(outcome, "update handled", bot=bot_id, chat_key=key)   # once per record
        ...
        summary.close()                                                       # at stop: the last counts

    `record` counts `outcome` and, only when DEBUG is enabled, logs the line with the given context
    fields. At most every `every_s` seconds (checked on `record`, no timer) it logs at INFO
    "updates: 1234 in 30.0s (41.1/s): delivered 1200, failed 34" with `counts`, `total`,
    `interval_s` and `rate_per_s` as fields, and starts counting again. Not thread-safe: one per
    event loop / thread.
    """

    def __init__(self, logger: logging.Logger, what: str, *, every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = logger
        self.what = what
        self.every_s = every_s
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.started = clock()
        self._due = self.started + every_s

    def record(self, outcome: str = "ok", msg: str | None = None, /, **fields: Any) -> None:
        self.counts[outcome] += 1
        if msg is not None and self.log.isEnabledFor(logging.DEBUG):
            self.log.debug(msg, extra={"status": outcome, **fields})
        now = self.clock()
        if now >= self._due:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Log the summary of what was counted since the last one (nothing when nothing was)."""
        now = self.clock() if now is None else now
        interval = max(now - self.started, 1e-9)
        total = sum(self.counts.values())
        if total:
            parts = ", ".join(f"{k} {v}" for k, v in self.counts.most_common())
            rate = total / interval
            self.log.info("%s: %d in %.1fs (%.1f/s): %s", self.what, total, interval, rate, parts,
                          extra={"what": self.what, "counts": dict(self.counts), "total": total,
                                 "interval_s": round(interval, 3), "rate_per_s": round(rate, 2)})
        self.counts.clear()
        self.started = now
        self._due = now + self.every_s

    def close(self) -> None:
        self.flush()
