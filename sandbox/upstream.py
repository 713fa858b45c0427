"""The generic upstream: `/upstream/{name}/...` answers like a slow or flaky external API.

Bots call external APIs (an LLM, a CRM) through integrations with guards — a concurrency cap,
timeouts, retries, a breaker. Those guards are only believable when tested against a real server
that is slow, fails, throttles and hangs on demand, and that can tell how many requests it held at
once. This module is that server's sans-IO part: `Upstream.handle` decides what one request gets;
the ASGI shell (`botstream.sandbox.asgi`) waits, holds and answers, and reports entry and exit to
`UpstreamStats`, which measures the peak of concurrent requests per name.

Any method and path below the name is accepted; a JSON body with a `question` (or `prompt`) gets
an LLM-like `answer` back, every body is echoed.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from botstream.sandbox.config import UpstreamConfig
from botstream.sandbox.faults import latency_seconds
from botstream.sandbox.http import Reply, Request, json_reply

__all__ = ["UPSTREAM_PREFIX", "Upstream", "UpstreamDecision", "UpstreamStats", "decide_upstream", "request_key"]

UPSTREAM_PREFIX = "/upstream/"
KEY_HEADER = "x-upstream-key"

Behaviour = Literal["ok", "error", "rate_limit", "hang"]


@dataclass(frozen=True, slots=True)
class UpstreamDecision:
    """One request's fate: `kind`, the 5xx `status` for errors, and `delay` seconds of latency first."""

    kind: Behaviour = "ok"
    status: int = 200
    delay: float = 0.0


def request_key(req: Request, key_field: str) -> str | None:
    """The key that may pin a behaviour: the `X-Upstream-Key` header, else a JSON body field."""
    header = req.header(KEY_HEADER)
    if header:
        return header
    body = _json_body(req)
    value = body.get(key_field) if isinstance(body, dict) else None
    return str(value) if value is not None else None


def decide_upstream(cfg: UpstreamConfig, key: str | None, rng: random.Random) -> UpstreamDecision:
    """Draws exactly two numbers while anything random is configured, whatever the outcome, so the
    n-th request's fate depends only on the seed and n; a pinned key overrides the random kind."""
    kind: Behaviour = "ok"
    delay = 0.0
    u_status = 0.0
    if cfg.random_active:
        u_kind, u_latency = rng.random(), rng.random()
        delay = latency_seconds(cfg.latency, u_latency)
        u_status = u_latency  # reusing a draw keeps the count fixed; status and latency need not be independent
        edge = cfg.hang_ratio
        if u_kind < edge:
            kind = "hang"
        elif u_kind < (edge := edge + cfg.rate_limit_ratio):
            kind = "rate_limit"
        elif u_kind < edge + cfg.error_ratio:
            kind = "error"
    pinned = cfg.keys.get(key) if key is not None else None
    if pinned is not None:
        kind = pinned  # type: ignore[assignment]
    if kind == "error":
        return UpstreamDecision("error", cfg.error_statuses[int(u_status * len(cfg.error_statuses))], delay)
    if kind == "rate_limit":
        return UpstreamDecision("rate_limit", 429, delay)
    if kind == "hang":
        return UpstreamDecision("hang", 504, delay)
    return UpstreamDecision("ok", 200, delay)


class UpstreamStats:
    """Requests and outcomes per name, and the measured concurrency: requests between arrival and
    the end of their answer (or the client's disconnect), now and at the peak since the last reset."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.in_flight_total = 0
        self.peak_total = 0

    def count(self, name: str, outcome: str) -> None:
        self.outcomes.setdefault(name, Counter())[outcome] += 1

    def enter(self, name: str) -> None:
        self.requests[name] += 1
        self.in_flight[name] += 1
        self.in_flight_total += 1
        self.peak[name] = max(self.peak[name], self.in_flight[name])
        self.peak_total = max(self.peak_total, self.in_flight_total)

    def leave(self, name: str) -> None:
        self.in_flight[name] -= 1
        self.in_flight_total -= 1

    def reset(self) -> None:
        """Forget counts and peaks; requests still being served stay counted as in flight."""
        self.requests.clear()
        self.outcomes.clear()
        self.peak = Counter({k: v for k, v in self.in_flight.items() if v})
        self.peak_total = self.in_flight_total

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "outcomes": {name: dict(c) for name, c in self.outcomes.items()},
            "in_flight": {k: v for k, v in self.in_flight.items() if v},
            "peak_in_flight": dict(self.peak),
            "in_flight_total": self.in_flight_total,
            "peak_in_flight_total": self.peak_total,
        }


@dataclass(slots=True)
class UpstreamOutcome:
    """What the shell does: wait `delay` (noticing a disconnect), then hold up to `hold` seconds when
    it is a hang, then send `reply`. `name` is the stats bucket."""

    name: str
    reply: Reply
    kind: str
    delay: float = 0.0
    hold: float = 0.0


class Upstream:
    def __init__(self, config: UpstreamConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.stats = UpstreamStats()

    def configure(self, config: UpstreamConfig, seed: int) -> None:
        self.config = config
        if seed != self.seed:
            self.seed = seed
            self.rng.seed(seed)

    def reset(self) -> None:
        self.stats.reset()
        self.rng.seed(self.seed)

    def handle(self, req: Request) -> UpstreamOutcome | None:
        """None when the path names no upstream (the shell answers 404)."""
        name, _, rest = req.path[len(UPSTREAM_PREFIX):].partition("/")
        if not name:
            return None
        cfg = self.config
        if cfg.authorization and req.header("authorization") != cfg.authorization:
            self.stats.count(name, "unauthorized")
            return UpstreamOutcome(name, json_reply(401, {"error": {"type": "unauthorized"}}), "unauthorized")
        decision = decide_upstream(cfg, request_key(req, cfg.key_field), self.rng)
        self.stats.count(name, decision.kind)
        if decision.kind == "error":
            reply = json_reply(decision.status, {"error": {"type": "server_error", "status": decision.status}})
        elif decision.kind == "rate_limit":
            reply = json_reply(429, {"error": {"type": "rate_limited", "retry_after": cfg.retry_after_s}},
                               ((b"retry-after", f"{cfg.retry_after_s:g}".encode()),))
        elif decision.kind == "hang":
            reply = json_reply(504, {"error": {"type": "timeout"}})
            return UpstreamOutcome(name, reply, "hang", decision.delay, cfg.hang_max_s)
        else:
            reply = json_reply(200, _answer(name, req, self.stats.requests[name] + 1))
        return UpstreamOutcome(name, reply, decision.kind, decision.delay)


def _answer(name: str, req: Request, n: int) -> dict[str, Any]:
    body = _json_body(req)
    out: dict[str, Any] = {"ok": True, "upstream": name, "method": req.method,
                           "path": "/" + req.path[len(UPSTREAM_PREFIX):].partition("/")[2], "n": n, "echo": body}
    if isinstance(body, dict):
        question = body.get("question") or body.get("prompt")
        if isinstance(question, str):
            out["answer"] = f"[{name}] You asked: {question.strip()}"
    return out


def _json_body(req: Request) -> Any:
    if not req.body:
        return None
    try:
        return json.loads(req.body)
    except ValueError:
        return None
