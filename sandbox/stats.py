"""Counters for `GET /_sandbox/stats`: what the sandbox accepted, refused and broke on purpose."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

__all__ = ["SandboxStats"]


class SandboxStats:
    """Kinds used in `rate_limited`: per_chat (Telegram chat, Slack channel, Discord channel or
    webhook bucket), global (per bot: Telegram 30/s, Discord 50/s, WhatsApp 80/s per number),
    group (Telegram 20/min), pair (WhatsApp per recipient). Fault kinds: error_5xx, timeout, reset,
    latency, forbidden, missing, migrate."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.rate_limited: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.faults: Counter[str] = Counter()
        self.nonce_hits = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "rate_limited": {p: dict(c) for p, c in self.rate_limited.items()},
            "rate_limited_total": sum(sum(c.values()) for c in self.rate_limited.values()),
            "faults": dict(self.faults),
            "nonce_hits": self.nonce_hits,
        }
