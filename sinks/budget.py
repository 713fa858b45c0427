"""Each bot's send budget on this worker: its limiter, with a jitter margin and its partition share.

Arrival jitter. The limiter decides when a request may leave; the platform counts when it arrives.
A chat's bucket that was full when a request left would refill from that moment, the platform's
only from the (later) arrival, so a sender pacing exactly at a per-chat limit gets a 429 it did
nothing to deserve. The sender therefore re-dates each chat's take to when the response came
(`BotLimiter.settle`), which the arrival cannot be later than. On top of that, per-chat rates run
`CHAT_MARGIN` below the documented limit and windowed group limits one message short, for clock
granularity and the platforms' own rounding. The bot-wide budget needs neither: our bot bucket's
burst is 0.2 s of its rate, far below what the platforms tolerate, so the platform's bucket always
has tokens to spare for jitter.

Share. A bot's global budget is one number for all sink workers; each worker owns some partitions
of `replies`, chats hash evenly over partitions, so a worker owning k of n partitions gets k/n of
the budget (`BotLimiter.rescale`), recomputed on every rebalance.
"""

from __future__ import annotations

import dataclasses

from botstream.core.bots import BotConfig, BotRegistry
from botstream.sinks.limits_defaults import SendLimits, resolve_limits
from botstream.sinks.ratelimit import BotLimiter

__all__ = ["CHAT_MARGIN", "Budgets", "with_margin"]

CHAT_MARGIN = 0.05


def with_margin(limits: SendLimits, margin: float = CHAT_MARGIN) -> SendLimits:
    changes: dict[str, object] = {}
    if limits.per_chat_per_second is not None:
        changes["per_chat_per_second"] = limits.per_chat_per_second * (1.0 - margin)
    if limits.per_group_per_minute is not None and limits.per_group_per_minute > 1:
        changes["per_group_per_minute"] = limits.per_group_per_minute - 1
    if limits.chat_window is not None and limits.chat_window[0] > 1:
        changes["chat_window"] = (limits.chat_window[0], limits.chat_window[1] * (1.0 + margin))
    return dataclasses.replace(limits, **changes)  # type: ignore[arg-type]


class Budgets:
    """The limiters of every bot, created on first use, all scaled to this worker's share."""

    def __init__(self, bots: BotRegistry, margin: float = CHAT_MARGIN) -> None:
        self._bots = bots
        self._margin = margin
        self._share = 1.0
        self._limiters: dict[str, BotLimiter] = {}

    @property
    def share(self) -> float:
        return self._share

    def limiter(self, bot: BotConfig) -> BotLimiter:
        limiter = self._limiters.get(bot.id)
        if limiter is None:
            limits = with_margin(resolve_limits(bot), self._margin)
            limiter = self._limiters[bot.id] = BotLimiter(bot.platform, limits, share=self._share)
        return limiter

    def rescale(self, owned_partitions: int, total_partitions: int) -> float:
        """Adopt this worker's share of every bot's budget after a rebalance; returns the share."""
        if total_partitions < 1:
            raise ValueError("total_partitions must be >= 1")
        self._share = max(0.0, min(1.0, owned_partitions / total_partitions))
        for limiter in self._limiters.values():
            limiter.rescale(self._share)
        return self._share

    def global_rate(self, bot: BotConfig) -> float:
        return self.limiter(bot).global_rate
