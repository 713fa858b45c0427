"""What a platform's answer means for a reply, independent of the platform.

Each platform module turns an HTTP response into one of these values; the limiter, the retry policy
and the breaker act on them without knowing which platform spoke. They are plain frozen data so the
shell can log them, count them and put them on `deliveries` as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

WAIT_SCOPES = ("chat", "bot", "group", "global")  # plus "route:<bucket>" for Discord


@dataclass(frozen=True)
class Delivered:
    """The platform accepted the reply; its message id when it returns one (typing returns none)."""

    platform_message_id: str | None = None


@dataclass(frozen=True)
class Wait:
    """Rate limited: wait `retry_after_s` before sending again on the bucket named by `scope`.

    scope is "chat", "group", "bot", "global" or "route:<bucket>" (a Discord route bucket). Only that
    bucket pauses, so one throttled chat does not stop the bot's other chats.
    """

    retry_after_s: float
    scope: str

    def __post_init__(self) -> None:
        if self.retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, not {self.retry_after_s}")
        if self.scope not in WAIT_SCOPES and not self.scope.startswith("route:"):
            raise ValueError(f"unknown wait scope {self.scope!r}")


@dataclass(frozen=True)
class Retryable:
    """A failure that may pass on a later try (5xx, timeouts, connection errors).

    `ambiguous` is True when the request may have reached the platform before failing (a read
    timeout): a retry can then duplicate the message on platforms without an idempotency key.
    """

    api_failure: ClassVar[bool] = True  # counts against the bot's circuit breaker (botstream.core.breaker)

    reason: str
    http_status: int | None = None
    ambiguous: bool = False


@dataclass(frozen=True)
class Permanent:
    """A failure that the same request will always meet (bad request, bot blocked, chat gone)."""

    reason: str
    http_status: int | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Moved:
    """The chat lives on under another id (Telegram group upgraded to a supergroup): resend there."""

    new_chat_id: str


Outcome: TypeAlias = Delivered | Wait | Retryable | Permanent | Moved


@dataclass(frozen=True)
class DiscordBucketUpdate:
    """Discord's `X-RateLimit-*` headers of one response: the state of the route bucket it used."""

    bucket: str
    limit: int
    remaining: int
    reset_after_s: float


# Transport failures by exception class name (httpx, httpcore and the builtins they wrap), so this
# module needs no httpx import and the shell can pass `type(exc).__name__`.
_NOT_SENT = {"ConnectTimeout", "ConnectError", "PoolTimeout", "ConnectionRefusedError", "ProxyError"}
_OUR_FAULT = {"LocalProtocolError", "UnsupportedProtocol", "InvalidURL", "TooManyRedirects"}


def classify_transport_error(exc_name: str) -> Retryable | Permanent:
    """Classify a failure that happened before any HTTP response arrived.

    Connection-level failures are retryable; the request never left, or may have (then `ambiguous`).
    Errors that prove the request itself is malformed are permanent. Unknown names are treated as
    retryable and ambiguous: the breaker stops a storm, whereas a wrong "permanent" loses the reply.
    """
    if exc_name in _OUR_FAULT:
        return Permanent(f"transport: {exc_name}", None, exc_name)
    return Retryable(f"transport: {exc_name}", None, ambiguous=exc_name not in _NOT_SENT)


def describe_outcome(outcome: Outcome) -> str:
    """One line for `last_error`, logs and the DLQ record."""
    match outcome:
        case Delivered(message_id):
            return f"delivered ({message_id})" if message_id else "delivered"
        case Wait(after, scope):
            return f"rate limited ({scope}), retry after {after:g}s"
        case Retryable(reason, status, _):
            return f"http {status}: {reason}" if status is not None else reason
        case Permanent(reason, status, code):
            head = f"http {status}" if status is not None else "error"
            return f"{head} [{code}]: {reason}" if code else f"{head}: {reason}"
        case Moved(new_chat_id):
            return f"chat moved to {new_chat_id}"
    raise TypeError(f"not an outcome: {outcome!r}")
