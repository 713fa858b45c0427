"""One reply's way out: ledger check, budget, coalescing, breaker, the HTTP call, and what it meant.

`ReplyDeliverer.deliver` turns a reply into a `Verdict` and performs no Kafka or table writes: the
worker applies the verdict (ledger, `deliveries`, retry topic, DLQ, hold state). It waits, though:
for the bot's and the chat's budget, and after a 429 — always inside the chat's own task, so a
throttled chat holds back only itself.

Decisions, and why:

- Budget first, then the breaker: a half-open breaker's probe must be an actual request, so the
  probe slot is taken only when the request is about to leave.
- Coalescing only when the chat's budget is spent: if a send can leave now, joining texts would
  only delay the first one. When it had to wait, the replies that queued up behind it meanwhile
  (in the agent's chat queue, or held behind a retry) go out as one message.
- A 429 pauses only the bucket it names (the limiter) and is retried in place after the wait,
  without consuming an attempt, up to `inline_waits` times and as long as the platform asks for at
  most `long_wait_s`; past that the reply goes to the retry chain (counted as an attempt, so a
  platform that never stops refusing ends in the DLQ). A budget wait longer than `long_wait_s`
  (a Telegram group's 20/min window) parks the reply in the chain without counting an attempt:
  the chat is then held durably instead of occupying one of the worker's chat slots.
- Telegram's migrate_to_chat_id: resent to the new id at once (kept in memory for the chat's
  later replies, so each does not pay a failed request first).
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from botstream.core.bots import BotConfig, BotRegistry
from botstream.core.breaker import CircuitBreaker, counts_as_failure
from botstream.core.generation import Generation
from botstream.core.tracing import span
from botstream.sinks import metrics
from botstream.sinks.budget import Budgets
from botstream.sinks.coalesce import coalesce, merged_reply
from botstream.sinks.errors import SinkError, UnsupportedReply
from botstream.sinks.ledger import DeliveryLedger, LedgerEntry
from botstream.sinks.outcomes import Delivered, Moved, Outcome, Permanent, Retryable, Wait, describe_outcome
from botstream.sinks.platforms import adapter_for
from botstream.sinks.platforms.discord import rate_limit_headers
from botstream.sinks.ratelimit import BotLimiter
from botstream.sinks.results import log_fields
from botstream.sinks.retry import RetryChain, ToDLQ, ToRetry, prepare_retry, redirected
from botstream.sinks.sender import HttpSender

__all__ = ["DeadLetter", "Duplicate", "Park", "ReplyDeliverer", "Sent", "Skipped", "Verdict"]

log = logging.getLogger(__name__)

LONG_WAIT_S = 5.0
INLINE_WAITS = 3
MAX_MOVES = 2
MAX_GROUP = 50
MOVED_CHATS_KEPT = 10_000


@dataclass(frozen=True)
class Sent:
    """Delivered. `group` lists every reply the message carried; the first is the one asked for."""

    group: list[dict[str, Any]]
    message_id: str | None
    http_status: int | None


@dataclass(frozen=True)
class Park:
    """To retry level `level`: `record` is the reply as it goes there (attempt, not-before, errors)."""

    record: dict[str, Any]
    level: int
    reason: str
    counted: bool


@dataclass(frozen=True)
class DeadLetter:
    reply: dict[str, Any]
    reason: str
    outcome: Literal["failed_permanent", "dead_lettered"]
    http_status: int | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Duplicate:
    """The ledger already has this reply's fate: nothing was sent."""

    entry: LedgerEntry


@dataclass(frozen=True)
class Skipped:
    """The platform has no such action (typing on Slack): nothing to send, nothing to retry."""

    reason: str


Verdict: TypeAlias = Sent | Park | DeadLetter | Duplicate | Skipped
Followers = Callable[[], Sequence[Mapping[str, Any]]]


class _TooLong(Exception):  # noqa: N818 - internal signal
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s


class ReplyDeliverer:
    def __init__(self, bots: BotRegistry, sender: HttpSender, budgets: Budgets, policy: RetryChain,
                 generation: Generation, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, rng: random.Random | None = None,
                 breaker_factory: Callable[[], CircuitBreaker] = CircuitBreaker,
                 sleep: Callable[[float, int], Awaitable[None]] | None = None,
                 long_wait_s: float = LONG_WAIT_S, inline_waits: int = INLINE_WAITS) -> None:
        self._bots = bots
        self._sender = sender
        self._budgets = budgets
        self._policy = policy
        self._gen = generation
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._breaker_factory = breaker_factory
        self._sleep = sleep or generation.sleep  # (seconds, generation): raises Abandoned when it ends
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._breaker_shown: dict[tuple[str, str], str] = {}
        self._moved: OrderedDict[str, str] = OrderedDict()
        self.long_wait_s = long_wait_s
        self.inline_waits = inline_waits

    def breaker(self, bot: BotConfig) -> CircuitBreaker:
        key = (bot.platform, bot.id)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = self._breaker_factory()
        return breaker

    def now_ms(self) -> int:
        return int(self._wall() * 1000)

    async def deliver(self, reply: Mapping[str, Any], *, generation: int, ledger: DeliveryLedger,
                      followers: Followers = tuple) -> Verdict:
        """Try to deliver `reply`; `followers` gives the chat's next replies (for coalescing)."""
        with span("sinks.deliver", reply.get("traceparent"), reply_id=reply.get("reply_id"),
                  correlation_id=reply.get("correlation_id")):
            return await self._deliver(reply, generation=generation, ledger=ledger, followers=followers)

    async def _deliver(self, reply: Mapping[str, Any], *, generation: int, ledger: DeliveryLedger,
                       followers: Followers = tuple) -> Verdict:
        bot = self._bots.get(reply["bot_id"])
        if bot is None or bot.platform != reply["platform"]:
            return DeadLetter(dict(reply), f"no {reply['platform']} bot {reply['bot_id']!r} in the bots file",
                              "failed_permanent", error_code="unknown_bot")
        entry = ledger.get(reply["reply_id"])
        if entry is not None:
            return Duplicate(entry)
        adapter = adapter_for(bot.platform)
        limiter = self._budgets.limiter(bot)
        breaker = self.breaker(bot)
        chat = str(reply["chat_key"])
        current = self._follow_moves(dict(reply))
        inline_waits = moves = 0
        while True:
            self._gen.check(generation)
            try:
                waited = await self._take_budget(limiter, bot, chat, reply.get("chat_type"), generation)
            except _TooLong as long:
                return self._defer(current, long.wait_s)
            group: list[dict[str, Any]] = [current]
            if waited > 0 and bot.coalesce:
                group = self._group(current, followers(), adapter.text_limit, ledger)
            to_send = merged_reply(group) if len(group) > 1 else current
            try:
                request = adapter.build_request(bot, to_send)
            except UnsupportedReply as exc:
                return Skipped(str(exc))
            except SinkError as exc:  # InvalidReply, MissingCredential: the same record can never be sent
                return DeadLetter(current, f"permanent failure: {exc}", "failed_permanent",
                                  error_code=type(exc).__name__)
            now = self._clock()
            if not breaker.allow(now):
                self._breaker_gauge(bot, breaker)
                return self._after_failure(current, Retryable(f"circuit open for bot {bot.id}"),
                                           min_delay_s=breaker.retry_in(now))
            result = await self._sender.send(bot.platform, request)
            limiter.settle(chat, self._clock())
            metrics.SEND_SECONDS.labels(bot.platform, bot.id).observe(result.seconds)
            status: int | None = None
            outcome: Outcome
            if result.response is not None:
                status = result.response.status
                outcome = adapter.classify(result.response)
                if bot.platform == "discord":
                    learned = rate_limit_headers(result.response)
                    if learned is not None:
                        limiter.learn_discord(chat, learned, self._clock())
            else:
                assert result.failure is not None
                outcome = result.failure
            breaker.record(not counts_as_failure(outcome), self._clock())
            self._breaker_gauge(bot, breaker)
            if isinstance(outcome, Delivered):
                return Sent(group, outcome.platform_message_id, status)
            if isinstance(outcome, Wait):
                metrics.RATE_LIMITED.labels(bot.platform, bot.id, outcome.scope.split(":")[0]).inc()
                limiter.on_wait(outcome, chat, self._clock())
                log.info("rate limited by the platform: this chat waits %.2fs (%s)", outcome.retry_after_s,
                         outcome.scope, extra=log_fields(current, delay_s=outcome.retry_after_s, status=status))
                if inline_waits < self.inline_waits and outcome.retry_after_s <= self.long_wait_s:
                    inline_waits += 1
                    continue
                return self._after_failure(current, outcome, http_status=status)
            if isinstance(outcome, Moved):
                moves += 1
                self._remember_move(chat, outcome.new_chat_id)
                log.info("chat moved to a new id; resending there", extra=log_fields(current))
                current = redirected(current, outcome)
                if moves <= MAX_MOVES:
                    continue
                return DeadLetter(current, "permanent failure: the chat keeps moving", "failed_permanent",
                                  http_status=status, error_code="moved")
            return self._after_failure(current, outcome, http_status=status)

    async def _take_budget(self, limiter: BotLimiter, bot: BotConfig, chat: str, chat_type: str | None,
                           generation: int) -> float:
        """Wait until the bot's and chat's limiters grant a send (taken); returns the seconds waited."""
        waited = 0.0
        while True:
            wait = limiter.reserve(chat, chat_type, self._clock())
            if wait <= 0.0:
                break
            if wait > self.long_wait_s:
                raise _TooLong(wait)
            await self._sleep(wait, generation)
            waited += wait
        if waited:
            metrics.RATE_LIMIT_WAIT.labels(bot.platform, bot.id).observe(waited)
        return waited

    def _group(self, first: dict[str, Any], followers: Sequence[Mapping[str, Any]], text_limit: int,
               ledger: DeliveryLedger) -> list[dict[str, Any]]:
        candidates: list[Mapping[str, Any]] = [first]
        for follower in followers[:MAX_GROUP]:
            if ledger.get(follower["reply_id"]) is not None:
                break  # a copy of a settled reply: never re-send its text inside another message
            candidates.append(follower)
        if len(candidates) == 1:
            return [first]
        return [dict(r) for r in coalesce(candidates, text_limit)[0]]

    def _defer(self, reply: dict[str, Any], wait_s: float) -> Park:
        step = self._policy.defer(wait_s, self.now_ms(), self._rng)
        record = prepare_retry(reply, step, None, count_attempt=False)
        return Park(record, step.level, f"rate limit budget: waiting {wait_s:.1f}s", counted=False)

    def _after_failure(self, reply: dict[str, Any], outcome: Outcome, *, http_status: int | None = None,
                       min_delay_s: float = 0.0) -> Park | DeadLetter:
        now_ms = self.now_ms()
        step = self._policy.next_step(reply, outcome, now_ms, self._rng)
        error = describe_outcome(outcome)
        if isinstance(step, ToRetry):
            not_before = max(step.not_before_ms, now_ms + round(min_delay_s * 1000))
            record = prepare_retry(reply, ToRetry(step.level, not_before), error)
            return Park(record, step.level, error, counted=True)
        assert isinstance(step, ToDLQ)
        kind: Literal["failed_permanent", "dead_lettered"] = (
            "failed_permanent" if isinstance(outcome, Permanent) else "dead_lettered")
        code = outcome.error_code if isinstance(outcome, Permanent) else None
        failed = dict(reply)
        failed["attempt"] = int(reply.get("attempt") or 0) + 1
        return DeadLetter(failed, step.reason, kind, http_status, code)

    def _follow_moves(self, reply: dict[str, Any]) -> dict[str, Any]:
        new_id = self._moved.get(str(reply["chat_key"]))
        if new_id is None or reply.get("chat_id") == new_id:
            return reply
        return redirected(reply, Moved(new_id))

    def _remember_move(self, chat: str, new_id: str) -> None:
        self._moved[chat] = new_id
        self._moved.move_to_end(chat)
        while len(self._moved) > MOVED_CHATS_KEPT:
            self._moved.popitem(last=False)

    def _breaker_gauge(self, bot: BotConfig, breaker: CircuitBreaker) -> None:
        key = (bot.platform, bot.id)
        if self._breaker_shown.get(key) != breaker.state:  # a gauge write takes a lock: only on changes
            self._breaker_shown[key] = breaker.state
            metrics.BREAKER_STATE.labels(*key).set(metrics.BREAKER_VALUES[breaker.state])
