"""Fault decisions, deterministic under a seed.

`decide` draws exactly four numbers from the injected `random.Random` for every request while any
random fault is configured, whatever the outcome, so the n-th request's fate depends only on the seed
and n — a failing test replays identically. Chat-keyed faults (forbidden / missing / migrated chats)
draw nothing: they are properties of the chat, not luck.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from botstream.sandbox.config import FaultConfig, LatencySpec

__all__ = ["ChatFault", "FaultDecision", "NO_FAULT", "chat_fault", "decide", "latency_seconds"]

FaultKind = Literal["none", "error_5xx", "timeout", "reset"]


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What the shell must do to this request.

    `delay`: seconds to wait before answering (latency). `kind`: "error_5xx" answers `status`;
    "timeout" holds the request `hold` seconds or until the client gives up; "reset" closes the
    connection abruptly without a response.
    """

    kind: FaultKind = "none"
    status: int = 0
    delay: float = 0.0
    hold: float = 0.0


NO_FAULT = FaultDecision()


def latency_seconds(spec: LatencySpec, u: float) -> float:
    """Map a uniform draw `u` in [0, 1) to the configured latency, capped at `cap_ms`."""
    if spec.kind == "fixed":
        ms = spec.ms
    elif spec.kind == "uniform":
        ms = spec.min_ms + (spec.max_ms - spec.min_ms) * u
    elif spec.kind == "exponential":
        ms = -spec.mean_ms * math.log(1.0 - u)
    else:
        return 0.0
    return min(ms, spec.cap_ms) / 1000.0


def decide(faults: FaultConfig, rng: random.Random) -> FaultDecision:
    """One request's random fault. Bands of a single draw make the kinds mutually exclusive:
    [0, reset) resets, then timeouts, then 5xx."""
    if not faults.random_active:
        return NO_FAULT
    u_kind, u_status, u_latency = rng.random(), rng.random(), rng.random()
    rng.random()  # reserved, so adding a fault kind later keeps old seeds' sequences
    delay = latency_seconds(faults.latency, u_latency)
    edge = faults.reset_ratio
    if u_kind < edge:
        return FaultDecision("reset", delay=delay)
    edge += faults.timeout_ratio
    if u_kind < edge:
        return FaultDecision("timeout", delay=delay, hold=faults.timeout_hold_seconds)
    edge += faults.ratio_5xx
    if u_kind < edge:
        statuses = faults.statuses_5xx
        return FaultDecision("error_5xx", status=statuses[int(u_status * len(statuses))], delay=delay)
    if delay:
        return FaultDecision(delay=delay)
    return NO_FAULT


@dataclass(frozen=True, slots=True)
class ChatFault:
    """A chat that always fails: "forbidden" (blocked/kicked), "missing" (does not exist) or
    "migrate" (Telegram group upgraded; `new_chat` is where to resend)."""

    kind: Literal["forbidden", "missing", "migrate"]
    new_chat: str = ""


def chat_fault(faults: FaultConfig, chat: str, platform: str) -> ChatFault | None:
    if chat in faults.forbidden_chats:
        return ChatFault("forbidden")
    if chat in faults.missing_chats:
        return ChatFault("missing")
    if platform == "telegram" and chat in faults.migrate:
        return ChatFault("migrate", faults.migrate[chat])
    return None
