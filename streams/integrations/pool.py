"""All declared integrations of one worker process, and how a handler call gets them.

Built once from the bots file: one `Integration` (one pooled httpx client, one cap, one breaker) per
(bot, name), shared by every chat the process handles — the guards only mean something when they
see all of the process's traffic to that API. `bind` hands each handler call lightweight views that
carry its correlation id and deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botstream.core.bots import BotConfig
from botstream.streams.integrations.client import BoundIntegration, CallScope, Integration

__all__ = ["DEADLINE_RESERVE_S", "IntegrationPool"]

# Time kept back from the handler's deadline: the integration gives up this much earlier, so the
# handler still has a moment to catch the error and answer with its own fallback text.
DEADLINE_RESERVE_S = 0.1


class IntegrationPool:
    def __init__(self, bots: Iterable[BotConfig], *, reserve_s: float = DEADLINE_RESERVE_S,
                 clock: Callable[[], float] = time.monotonic, **integration_kwargs: Any) -> None:
        """`integration_kwargs` go to every `Integration` (transport, clock, sleep, rng: for tests)."""
        self.reserve_s = reserve_s
        self._clock = clock
        self._by_bot: dict[str, dict[str, Integration]] = {
            bot.id: {name: Integration(bot.id, cfg, clock=clock, **integration_kwargs)
                     for name, cfg in bot.integrations.items()}
            for bot in bots if bot.integrations
        }

    def get(self, bot_id: str, name: str) -> Integration:
        return self._by_bot[bot_id][name]

    def __iter__(self) -> Iterator[Integration]:
        for integrations in self._by_bot.values():
            yield from integrations.values()

    def bind(self, bot_id: str, *, correlation_id: str | None = None, chat_key: str | None = None,
             deadline: float | None = None) -> dict[str, BoundIntegration]:
        """The bot's integrations for one handler call (empty for a bot without any).

        The deadline is moved earlier by `reserve_s`, at most a tenth of the time left, so a short
        handler timeout is not eaten by the reserve.
        """
        integrations = self._by_bot.get(bot_id)
        if not integrations:
            return {}
        if deadline is not None:
            deadline -= min(self.reserve_s, max(0.0, deadline - self._clock()) / 10)
        scope = CallScope(correlation_id=correlation_id, chat_key=chat_key, deadline=deadline)
        return {name: BoundIntegration(integration, scope) for name, integration in integrations.items()}

    async def aclose(self) -> None:
        for integration in self:
            await integration.aclose()
