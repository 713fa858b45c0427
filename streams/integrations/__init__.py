"""Integrations: guarded calls from bot handlers to slow or flaky external APIs (an LLM, a CRM).

Declared per bot in the bots file (`[bots.integrations.<name>]`, see `botstream.core.bots`), reached by
handlers through their context::

    try:
        resp = await ctx.integrations["llm"].post("/v1/answer", json={"question": q})
        ctx.reply(resp.json()["answer"])
    except IntegrationError:
        ctx.reply("The assistant is unavailable right now.")

Each (bot, integration) has, per worker process, one pooled httpx client and these guards: a
concurrency cap with a bounded wait for a slot (`IntegrationBusy`), a hard timeout per attempt,
retries of connection errors, timeouts, 5xx and 429 (honouring Retry-After) with full-jitter
exponential backoff, a circuit breaker (`IntegrationUnavailable` while open), and the handler's
deadline (`ctx.deadline`) as a bound on all of it — when the handler's timeout fires, the request in
flight is cancelled and its slot released.

Layout: `policy` (pure decisions), `errors`, `metrics`, `client` (the I/O shell), `pool` (per process).
"""

from botstream.streams.integrations.client import BoundIntegration, CallScope, Integration
from botstream.streams.integrations.errors import (
    IntegrationBusy,
    IntegrationError,
    IntegrationFailed,
    IntegrationRejected,
    IntegrationTimeout,
    IntegrationUnavailable,
)
from botstream.streams.integrations.pool import DEADLINE_RESERVE_S, IntegrationPool

__all__ = [
    "DEADLINE_RESERVE_S",
    "BoundIntegration",
    "CallScope",
    "Integration",
    "IntegrationBusy",
    "IntegrationError",
    "IntegrationFailed",
    "IntegrationPool",
    "IntegrationRejected",
    "IntegrationTimeout",
    "IntegrationUnavailable",
]
