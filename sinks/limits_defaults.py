"""Each platform's send limits (docs/platforms.md), and a bot's limits after its overrides.

Chosen values, and why:

- telegram: 30 msg/s per bot ("bulk" limit), 1 msg/s per chat with a burst of 3 ("short bursts
  tolerated"), 20 msg per any 60 s in a group (a sliding window: a token bucket refilling at 20/min
  with a burst would let burst + 20 through in one minute).
- slack: 1 msg/s per channel, burst 3 ("generous burst behavior"); the workspace cap is documented
  only as "several hundred messages per minute", so 5 msg/s (300/min), the low end, per workspace
  (team id) - a bot installed in several workspaces gets one budget in each.
- discord: 50 req/s per bot (global); per channel 5 sends per any 5 s (observed, a sliding window)
  until the route bucket's real numbers are learned from X-RateLimit-* headers.
- whatsapp: 80 msg/s per business number (the number of the chat id); per user the pair limit, one
  message per 6 s with bursts to 45, which is exactly a token bucket (rate 1/6, burst 45).
- generic: the receiver is ours or a partner's and documents nothing; 10 msg/s, no per-chat limit.

The bot-wide burst is 0.2 s worth of the rate (at least 1): it absorbs scheduling jitter, yet no
one-second window sees more than 1.2x the rate after an idle spell.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from botstream.core.bots import BotConfig

GLOBAL_BURST_S = 0.2


def global_burst(rate_per_s: float) -> float:
    return max(1.0, rate_per_s * GLOBAL_BURST_S)


@dataclass(frozen=True)
class SendLimits:
    """A bot's resolved limits. None disables that limit."""

    global_per_second: float  # per bot; per workspace on Slack, per business number on WhatsApp
    global_burst: float
    per_chat_per_second: float | None
    per_chat_burst: float
    per_group_per_minute: int | None  # sends in any 60 s to one group chat
    chat_window: tuple[int, float] | None = None  # (sends, seconds) per chat until learned (Discord)


DEFAULT_LIMITS: dict[str, SendLimits] = {
    "telegram": SendLimits(30.0, global_burst(30.0), 1.0, 3.0, 20),
    "slack": SendLimits(5.0, global_burst(5.0), 1.0, 3.0, None),
    "discord": SendLimits(50.0, global_burst(50.0), None, 1.0, None, chat_window=(5, 5.0)),
    "whatsapp": SendLimits(80.0, global_burst(80.0), 1 / 6, 45.0, None),
    "generic": SendLimits(10.0, global_burst(10.0), None, 1.0, None),
}


def resolve_limits(bot: BotConfig) -> SendLimits:
    """The platform defaults with the bots file's `[bots.limits]` overrides applied.

    `per_chat_burst` alone changes nothing on a platform without a per-chat rate (Discord, generic):
    set `per_chat_per_second` too to add one.
    """
    limits = DEFAULT_LIMITS[bot.platform]
    o = bot.limits
    changes: dict[str, object] = {}
    if o.global_per_second is not None:
        changes["global_per_second"] = o.global_per_second
        changes["global_burst"] = global_burst(o.global_per_second)
    if o.per_chat_per_second is not None:
        changes["per_chat_per_second"] = o.per_chat_per_second
    if o.per_chat_burst is not None:
        changes["per_chat_burst"] = max(1.0, o.per_chat_burst)
    if o.per_group_per_minute is not None:
        changes["per_group_per_minute"] = max(1, int(o.per_group_per_minute))
    return dataclasses.replace(limits, **changes)  # type: ignore[arg-type]
