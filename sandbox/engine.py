"""The sandbox's sans-IO core: one request in, one `Outcome` out.

Order of checks, the same for every platform: route → authenticate/validate (platform module) →
chat faults (forbidden / missing / migrated chat) → rate limits → random fault → accept and record
in the ledger. A random fault strikes before acceptance unless `faults.after_delivery` is set.
The engine never sleeps or touches sockets: latency, holds and resets are instructions in the
`Outcome` that the ASGI shell carries out, so all of this is testable with a fake clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from botstream.sandbox.config import PLATFORMS, SandboxConfig
from botstream.sandbox.faults import NO_FAULT, FaultDecision, chat_fault, decide
from botstream.sandbox.http import Headers, Reply, Request, json_reply
from botstream.sandbox.ledger import DeliveryLedger
from botstream.sandbox.platforms import DiscordApi, PlatformApi, SlackApi, TelegramApi, WhatsAppApi
from botstream.sandbox.platforms.slack import RESPONSE_URL_PREFIXES as SLACK_RESPONSE_URL_PREFIXES
from botstream.sandbox.stats import SandboxStats
from botstream.sandbox.upstream import Upstream

__all__ = ["Outcome", "SandboxEngine", "SEQ_HEADER"]

SEQ_HEADER = "x-botstream-seq"
NOT_FOUND = json_reply(404, {"error": "not_found"})
GATEWAY_TIMEOUT = 504


@dataclass(slots=True)
class Outcome:
    """`reply` to send after `delay` seconds. With `hold` > 0 the shell first waits up to `hold`
    seconds for the client to give up (and sends `reply`, a 504, only if it did not). With
    `reset` the connection is closed abruptly and `reply` is ignored."""

    reply: Reply
    delay: float = 0.0
    hold: float = 0.0
    reset: bool = False


class SandboxEngine:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.stats = SandboxStats()
        self.ledger = DeliveryLedger(self.config.delivery_log_limit)
        self.rng = random.Random(self.config.seed)
        self.upstream = Upstream(self.config.upstream, self.config.seed)
        self.telegram = TelegramApi(self.config)
        self.slack = SlackApi(self.config)
        self.discord = DiscordApi(self.config)
        self.whatsapp = WhatsAppApi(self.config)
        self._apis: dict[str, PlatformApi] = {
            "telegram": self.telegram, "slack": self.slack, "discord": self.discord, "whatsapp": self.whatsapp,
        }  # fmt: skip
        self._adopt(self.config)

    # -- control ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear deliveries, stats, limiter state and ids; re-seed the fault generator."""
        self.stats.reset()
        self.ledger.reset()
        self.rng.seed(self.config.seed)
        self.upstream.reset()
        for api in self._apis.values():
            api.reset()

    def update_config(self, config: SandboxConfig) -> None:
        old = self.config
        self.config = config
        limits_changed = old.limits != config.limits
        for api in self._apis.values():
            api.configure(config, limits_changed=limits_changed)
        if old.seed != config.seed:
            self.rng.seed(config.seed)
        self.upstream.configure(config.upstream, config.seed)
        if old.delivery_log_limit != config.delivery_log_limit:
            self.ledger.resize(config.delivery_log_limit)
        self._adopt(config)

    def _adopt(self, config: SandboxConfig) -> None:
        f = config.faults
        self._chat_faults = bool(f.forbidden_chats or f.missing_chats or f.migrate)
        self._fault_platforms = frozenset(f.platforms or PLATFORMS)
        self._random_faults = f.random_active

    # -- requests -----------------------------------------------------------------------------

    def route(self, path: str) -> PlatformApi | None:
        if path.startswith("/bot"):
            return self.telegram
        if path.startswith("/api/v"):
            return self.discord
        if path.startswith("/api/") or path.startswith(SLACK_RESPONSE_URL_PREFIXES):
            return self.slack
        if path.startswith("/v") and path.endswith("/messages"):
            return self.whatsapp
        return None

    def handle(self, req: Request, now: float, wall: float) -> Outcome:
        """Answer one platform request. `now` is the limiter clock (monotonic seconds), `wall`
        the unix time used for timestamps and arrival records."""
        api = self.route(req.path)
        if api is None:
            return Outcome(NOT_FOUND)
        name = api.name
        stats = self.stats
        stats.requests[name] += 1
        attempt = api.parse(req)
        if isinstance(attempt, Reply):
            stats.rejected[name] += 1
            return Outcome(attempt)
        faults = self.config.faults
        if self._chat_faults:
            cf = chat_fault(faults, attempt.chat, name)
            reply = api.chat_fault_reply(attempt, cf) if cf is not None else None
            if cf is not None and reply is not None:
                stats.faults[cf.kind] += 1
                return Outcome(reply)
        extra: Headers = ()
        if attempt.limited:
            verdict = api.check_limits(attempt, now, wall)
            if verdict.refusal is not None:
                stats.rate_limited[name][verdict.kind] += 1
                return Outcome(verdict.refusal)
            extra = verdict.headers
        fault = (
            decide(faults, self.rng) if self._random_faults and name in self._fault_platforms else NO_FAULT
        )
        if fault.kind != "none" and not faults.after_delivery:
            return self._fault_outcome(api, fault)
        accepted = api.accept(attempt, now, wall)
        if attempt.records:
            if accepted.fresh:
                stats.accepted[name] += 1
                self.ledger.record(
                    name, attempt.bot, attempt.chat, attempt.method, attempt.text,
                    accepted.message_id, _seq(req), int(wall * 1000),
                )  # fmt: skip
            else:
                stats.nonce_hits += 1
        if fault.kind != "none":
            return self._fault_outcome(api, fault)
        if fault.delay:
            stats.faults["latency"] += 1
        return Outcome(accepted.reply.with_headers(extra), delay=fault.delay)

    def _fault_outcome(self, api: PlatformApi, fault: FaultDecision) -> Outcome:
        self.stats.faults[fault.kind] += 1
        if fault.delay:
            self.stats.faults["latency"] += 1
        if fault.kind == "reset":
            return Outcome(NOT_FOUND, delay=fault.delay, reset=True)
        if fault.kind == "timeout":
            return Outcome(api.server_error(GATEWAY_TIMEOUT), delay=fault.delay, hold=fault.hold)
        return Outcome(api.server_error(fault.status), delay=fault.delay)


def _seq(req: Request) -> int | None:
    raw = req.headers.get(SEQ_HEADER)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
