"""Correlation ids and W3C trace context for one webhook request.

The correlation id ties together the log line, the `X-Request-Id` response header, the record's
`correlation_id` field and its `correlation-id` header, and everything downstream caused by the
update. A caller's own `X-Request-Id` (load balancers and API gateways set one) is kept so its logs
and ours join; it is accepted only when short and plain, because it is echoed into a response header,
a Kafka header and log lines.

`traceparent`: a valid incoming one is passed through unchanged, so the records join the caller's
trace; otherwise a new trace is started here (sampled flag set). Ingest reports no span of its own,
so minting a child span id nobody records would only leave a hole in the trace.
"""

from __future__ import annotations

import random
import re

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def new_correlation_id() -> str:
    # Unique, not secret: Python's generator is seeded from os.urandom in every (spawned) worker and
    # costs a tenth of a urandom syscall, which matters at one or two ids per request.
    return f"{random.getrandbits(128):032x}"


def correlation_id_from(header: str | None) -> str:
    """The caller's X-Request-Id when it is safe to echo, else a fresh random id."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return new_correlation_id()


def new_traceparent() -> str:
    ids = f"{random.getrandbits(192) | 1:048x}"  # odd: the span id can never be the invalid all-zero
    return f"00-{ids[:32]}-{ids[32:]}-01"


def traceparent_from(header: str | None) -> str:
    """A valid W3C traceparent is kept as is; an absent or invalid one starts a new trace.

    Per the spec: version ff is invalid, all-zero trace or parent ids are invalid, and version 00
    has exactly four fields (later versions may append fields, which are ignored).
    """
    if header is not None:
        value = header.strip()
        match = _TRACEPARENT.match(value)
        if match is not None:
            version, trace_id, span_id, _flags = match.groups()
            exact = match.end() == len(value)
            extended = version != "00" and value[match.end():match.end() + 1] == "-"
            if version != "ff" and trace_id != _ZERO_TRACE and span_id != _ZERO_SPAN and (exact or extended):
                return value if exact else value[:match.end()]
    return new_traceparent()
