"""The contract between the engine and a platform module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from botstream.sandbox.config import SandboxConfig
from botstream.sandbox.faults import ChatFault
from botstream.sandbox.http import Headers, Reply, Request

__all__ = ["Accepted", "LimitVerdict", "PlatformApi", "SendAttempt"]


@dataclass(slots=True)
class SendAttempt:
    """A request that passed validation. `records` is False for calls that deliver nothing
    (Telegram's sendChatAction); `limited` False exempts it from rate limits."""

    method: str
    bot: str
    chat: str
    text: str
    params: dict[str, Any] = field(default_factory=dict)
    records: bool = True
    limited: bool = True


@dataclass(slots=True)
class LimitVerdict:
    """`refusal` is the platform's rate-limit reply (None = allowed), `kind` the stats kind;
    `headers` go on the eventual reply either way (Discord's X-RateLimit-*)."""

    refusal: Reply | None = None
    kind: str = ""
    headers: Headers = ()


ALLOWED = LimitVerdict()


@dataclass(slots=True)
class Accepted:
    """`fresh` is False when an idempotency key (Discord nonce) returned an earlier message."""

    message_id: str
    reply: Reply
    fresh: bool = True


class PlatformApi(Protocol):
    name: str

    def configure(self, config: SandboxConfig, *, limits_changed: bool) -> None:
        """Adopt a new config; drop limiter state when the limits changed."""

    def reset(self) -> None:
        """Forget messages, ids and limiter state."""

    def parse(self, req: Request) -> SendAttempt | Reply:
        """Authenticate and validate; a `Reply` is the platform's error."""

    def check_limits(self, attempt: SendAttempt, now: float, wall: float) -> LimitVerdict: ...

    def chat_fault_reply(self, attempt: SendAttempt, fault: ChatFault) -> Reply | None:
        """The platform's answer for a forbidden/missing/migrated chat (None = not applicable)."""

    def server_error(self, status: int) -> Reply: ...

    def accept(self, attempt: SendAttempt, now: float, wall: float) -> Accepted: ...
