"""Per-platform request building and response classification, behind one lookup: the outbound
adapters (their inbound counterparts, which verify and normalize webhooks, are
`botstream.ingest.platforms.InboundAdapter`).

    adapter = adapter_for(bot.platform)
    request = adapter.build_request(bot, reply)        # may raise InvalidReply / UnsupportedReply
    outcome = adapter.classify(InboundResponse(status, headers, body))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from botstream.core.bots import BotConfig
from botstream.sinks.outcomes import Outcome
from botstream.sinks.platforms import discord, generic, slack, telegram, whatsapp
from botstream.sinks.platforms.base import InboundResponse, OutboundRequest


@dataclass(frozen=True)
class OutboundAdapter:
    """One platform's replies out: build the send request, classify the answer (pure)."""

    name: str
    build_request: Callable[[BotConfig, Mapping[str, Any]], OutboundRequest]
    classify: Callable[[InboundResponse], Outcome]
    text_limit: int


def _adapter(name: str, module: ModuleType) -> OutboundAdapter:
    return OutboundAdapter(name, module.build_request, module.classify, module.TEXT_LIMIT)


ADAPTERS: dict[str, OutboundAdapter] = {
    name: _adapter(name, module)
    for name, module in (("telegram", telegram), ("slack", slack), ("discord", discord),
                         ("whatsapp", whatsapp), ("generic", generic))
}
TEXT_LIMITS: dict[str, int] = {name: adapter.text_limit for name, adapter in ADAPTERS.items()}


def adapter_for(platform: str) -> OutboundAdapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise ValueError(f"no sink for platform {platform!r} (one of {', '.join(ADAPTERS)})") from None


__all__ = ["ADAPTERS", "TEXT_LIMITS", "InboundResponse", "OutboundAdapter", "OutboundRequest", "adapter_for"]
