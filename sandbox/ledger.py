"""What the platforms would have shown the users: every accepted message, in arrival order.

Tests of the senders assert against this, so it also judges ordering: a sender may stamp each
request with `X-Botstream-Seq` (an integer increasing per chat); a message whose sequence is lower
than one already delivered to the same chat is an order violation, an equal one a duplicate.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Delivery", "DeliveryLedger"]

ChatKey = tuple[str, str, str]  # platform, bot, chat


@dataclass(slots=True)
class Delivery:
    index: int
    platform: str
    bot: str
    chat: str
    method: str
    text: str
    message_id: str
    seq: int | None
    arrival_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "platform": self.platform,
            "bot": self.bot,
            "chat": self.chat,
            "method": self.method,
            "text": self.text,
            "message_id": self.message_id,
            "seq": self.seq,
            "arrival_ms": self.arrival_ms,
        }


class DeliveryLedger:
    """Bounded log (`limit` newest, 0 = unbounded); order tracking covers every message ever
    recorded since the last reset, not just the retained ones."""

    def __init__(self, limit: int = 0) -> None:
        self._log: deque[Delivery] = deque(maxlen=limit or None)
        self._max_seq: dict[ChatKey, int] = {}
        self._next_index = 0
        self.order_violations = 0
        self.duplicate_seqs = 0
        self.violations: deque[dict[str, Any]] = deque(maxlen=1000)

    def resize(self, limit: int) -> None:
        self._log = deque(self._log, maxlen=limit or None)

    def reset(self) -> None:
        self._log.clear()
        self._max_seq.clear()
        self._next_index = 0
        self.order_violations = 0
        self.duplicate_seqs = 0
        self.violations.clear()

    def record(
        self,
        platform: str,
        bot: str,
        chat: str,
        method: str,
        text: str,
        message_id: str,
        seq: int | None,
        arrival_ms: int,
    ) -> Delivery:
        if seq is not None:
            key = (platform, bot, chat)
            prev = self._max_seq.get(key)
            if prev is None or seq > prev:
                self._max_seq[key] = seq
            elif seq == prev:
                self.duplicate_seqs += 1
            else:
                self.order_violations += 1
                self.violations.append(
                    {
                        "platform": platform,
                        "bot": bot,
                        "chat": chat,
                        "seq": seq,
                        "after_seq": prev,
                        "index": self._next_index,
                    }
                )
        d = Delivery(self._next_index, platform, bot, chat, method, text, message_id, seq, arrival_ms)
        self._next_index += 1
        self._log.append(d)
        return d

    def query(
        self, platform: str | None = None, bot: str | None = None, chat: str | None = None,
        since_ms: int | None = None,
    ) -> list[Delivery]:
        """Retained deliveries matching every filter given; `since_ms`: arrived at or after it."""
        log: Iterable[Delivery] = self._log
        if since_ms is not None:  # arrival order: read back from the newest, stop at the first older one
            log = reversed(list(itertools.takewhile(lambda d: d.arrival_ms >= since_ms, reversed(self._log))))
        return [
            d
            for d in log
            if (platform is None or d.platform == platform)
            and (bot is None or d.bot == bot)
            and (chat is None or d.chat == chat)
        ]

    def __len__(self) -> int:
        return len(self._log)
