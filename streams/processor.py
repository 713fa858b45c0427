"""What happens to one update: dedupe → enrich with conversation state → handler → route.

`UpdateProcessor` holds no Faust objects: its tables are `MutableMapping`s (Faust tables in the worker,
dicts in unit tests) and its output goes through an `Emit` callable, so the whole decision path runs
in tests without a broker. Every path ends in a record — replies, events, a handoff copy, or a recorded
failure — never a silently skipped update.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from botstream.core.bots import BotRegistry
from botstream.schemas.binary_compiler import UNION_TAG
from botstream.streams import metrics
from botstream.streams.conversation import ConversationState, apply, initial_state
from botstream.streams.dedupe import (
    Seen,
    Verdict,
    decide,
    dedupe_key,
    expiry_index_key,
    parse_expiry_index_key,
)
from botstream.streams.handlers import Bot, Context, PlannedReply
from botstream.streams.integrations import IntegrationPool

log = logging.getLogger(__name__)

# (stream name: "replies" | "messages" | "handoff", key, record, headers): enqueues the record in order
# and returns what to await for the broker's acknowledgement (None when it is already durable).
Emit = Callable[[str, str, dict[str, Any], dict[str, bytes]], Awaitable[Awaitable[Any] | None]]
SEQ_STRIDE = 1000  # chat_seq = offset * SEQ_STRIDE + index: increasing per chat, same on reprocessing


def stable_id(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def reply_id(update: dict[str, Any], index: int) -> str:
    """Deterministic from the causing update and the reply's index: reprocessing yields the same ids."""
    return stable_id("reply", update["platform"], update["bot_id"], update["update_id"], index)


@dataclass
class Outcome:
    verdict: str  # "handled", "duplicate", "from_bot", "handoff", "failed", "no_handler"
    replies: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class UpdateProcessor:
    def __init__(self, bots: BotRegistry, handlers: dict[str, Bot], *, dedupe: MutableMapping[bytes, Any],
                 dedupe_index: MutableMapping[bytes, Any], conversations: MutableMapping[bytes, Any],
                 emit: Emit, dedupe_window_s: float, handler_timeout_s: float,
                 clock: Callable[[], float] = time.time, integrations: IntegrationPool | None = None) -> None:
        self.bots = bots
        self.handlers = handlers
        self.dedupe = dedupe
        self.dedupe_index = dedupe_index
        self.conversations = conversations
        self.emit = emit
        self.window_ms = int(dedupe_window_s * 1000)
        self.handler_timeout_s = handler_timeout_s
        self.clock = clock
        self.integrations = integrations

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def process(self, update: dict[str, Any], partition: int, offset: int,
                      headers: dict[str, bytes] | None = None) -> Outcome:
        headers = dict(headers or {})
        chat = chat_key_of(update)
        labels = (update["platform"], update["bot_id"])
        if update.get("from_bot"):
            metrics.UPDATES.labels(*labels, "from_bot").inc()
            return Outcome("from_bot")
        key = dedupe_key(update)
        now = self.now_ms()
        verdict = decide(self.dedupe.get(key), partition, offset, now, self.window_ms)
        if verdict is Verdict.DUPLICATE:
            metrics.UPDATES.labels(*labels, "duplicate").inc()
            metrics.DUPLICATES.labels(*labels).inc()
            log.info("duplicate update dropped", extra={"correlation_id": update.get("correlation_id"),
                                                         "chat_key": chat, "update_id": update["update_id"]})
            return Outcome("duplicate")
        if verdict is Verdict.NEW:
            self.dedupe[key] = Seen(p=partition, o=offset, t=now)
            self.dedupe_index[expiry_index_key(now, key)] = b""

        state = self._state(chat)
        bot = self.bots.get(update["bot_id"])
        events = [self._event(update, 0, "UpdateAccepted", update_id=update["update_id"], kind=update["kind"],
                              user_id=update.get("user_id"), text=update.get("text"), locale=update.get("locale"))]
        if state["handoff"]:
            outcome = Outcome("handoff", events=events)
            await self._commit(chat, state, outcome, headers, [await self.emit("handoff", chat, update, headers)])
            metrics.UPDATES.labels(*labels, "handoff").inc()
            return outcome

        handler_bot = self.handlers.get(update["bot_id"])
        handler = handler_bot.route(update) if handler_bot else None
        if handler is None:
            outcome = Outcome("no_handler", events=events)
            await self._commit(chat, state, outcome, headers)
            metrics.UPDATES.labels(*labels, "no_handler").inc()
            return outcome

        # The integrations get the moment wait_for gives up, so their waits and retries end before it.
        deadline = time.monotonic() + self.handler_timeout_s
        bound = self.integrations.bind(update["bot_id"], correlation_id=update.get("correlation_id"),
                                       chat_key=chat, deadline=deadline) if self.integrations is not None else {}
        ctx = Context(update=update, chat_key=chat, bot=bot, state=copy.deepcopy(state["bot_state"]),
                      conversation=dict(state), integrations=bound, deadline=deadline)
        started = time.perf_counter()
        failure: str | None = None
        try:
            await asyncio.wait_for(handler(ctx), self.handler_timeout_s)
        except TimeoutError:
            failure = f"timeout after {self.handler_timeout_s:g}s"
        except Exception as exc:  # noqa: BLE001 - a bot's bug becomes a recorded failure, never a crash
            failure = f"{type(exc).__name__}: {exc}"
        metrics.HANDLER_SECONDS.labels(*labels).observe(time.perf_counter() - started)
        name = getattr(handler, "__name__", "handler")
        if failure is not None:
            metrics.HANDLER_FAILURES.labels(*labels, "timeout" if failure.startswith("timeout") else "error").inc()
            log.warning("handler failed: %s", failure, extra={"correlation_id": update.get("correlation_id"),
                                                               "chat_key": chat, "update_id": update["update_id"]})
            events.append(self._event(update, len(events), "HandlerFailed", update_id=update["update_id"],
                                      handler=name, reason=failure[:500]))
            fallback = handler_bot.fallback_text if handler_bot else None
            fallback = (bot.fallback_text if bot and bot.fallback_text else None) or fallback
            planned = [PlannedReply(text=fallback)] if fallback else []
        else:
            planned = ctx.replies
        replies = [self.build_reply(update, chat, i, p, offset) for i, p in enumerate(planned)]
        for r in replies:
            events.append(self._event(update, len(events), "ReplyPlanned", reply_id=r["reply_id"], kind=r["kind"],
                                      text=r["text"], chat_seq=r["chat_seq"]))
        if failure is None and ctx.state != state["bot_state"]:
            events.append(self._event(update, len(events), "StateChanged",
                                      state_json=json.dumps(ctx.state, sort_keys=True, default=str)))
        if failure is None and ctx.handoff_requested:
            events.append(self._event(update, len(events), "HandoffRequested", reason=ctx.handoff_reason))
        outcome = Outcome("failed" if failure else "handled", replies=replies, events=events)
        await self._commit(chat, state, outcome, headers)
        metrics.UPDATES.labels(*labels, outcome.verdict).inc()
        metrics.REPLIES_PLANNED.labels(*labels).inc(len(replies))
        if log.isEnabledFor(logging.INFO):  # message text is never logged at INFO
            log.info("update %s: %d replies", outcome.verdict, len(replies),
                     extra={"correlation_id": update.get("correlation_id"), "chat_key": chat,
                            "update_id": update["update_id"], "bot": update["bot_id"]})
        return outcome

    async def _commit(self, chat: str, state: ConversationState, outcome: Outcome, headers: dict[str, bytes],
                      pending: list[Awaitable[Any] | None] | None = None) -> None:
        """Events first (the log is the truth), then replies in order, then the table (a cache of the fold).

        Records are enqueued one after another (so they keep their order on the chat's partition) and their
        acknowledgements awaited together: one broker round trip per update instead of one per record.
        """
        pending = list(pending or [])
        for event in outcome.events:
            pending.append(await self.emit("messages", chat, event, headers))
        for reply in outcome.replies:
            pending.append(await self.emit("replies", chat, reply, headers))
        acks = [p for p in pending if p is not None]
        if acks:
            await asyncio.gather(*acks)  # durable before the update's offset can be acknowledged
        for event in outcome.events:
            state = apply(state, event)
        self.conversations[chat.encode()] = state

    def record_external(self, event: dict[str, Any]) -> None:
        """Fold an event produced elsewhere (delivery outcomes, handoff release) into the table."""
        chat = event["chat_key"]
        self.conversations[chat.encode()] = apply(self._state(chat), event)

    def _state(self, chat: str) -> ConversationState:
        value = self.conversations.get(chat.encode())
        return value if value is not None else initial_state(chat)

    def _event(self, update: dict[str, Any], index: int, event_type: str, **payload: Any) -> dict[str, Any]:
        return {
            "event_id": stable_id("event", update["platform"], update["bot_id"], update["update_id"], index),
            "causation_id": update["update_id"], "correlation_id": update.get("correlation_id") or "",
            "chat_key": chat_key_of(update), "at_ms": self.now_ms(), "payload": {UNION_TAG: event_type, **payload},
        }

    def build_reply(self, update: dict[str, Any], chat: str, index: int, planned: PlannedReply, offset: int) -> dict[str, Any]:
        now = self.now_ms()
        meta = {k: v for k, v in (update.get("platform_meta") or {}).items()
                if k in ("interaction_token", "application_id")}
        kind = planned.kind
        if kind == "text" and "interaction_token" in meta:
            kind = "followup"
        return {
            "reply_id": reply_id(update, index), "chat_key": chat, "platform": update["platform"],
            "bot_id": update["bot_id"], "chat_id": update["chat_id"], "chat_type": update.get("chat_type", "unknown"),
            "kind": kind, "text": planned.text, "markup": planned.markup, "options": planned.options,
            "reply_to": planned.reply_to, "target_message_id": planned.target_message_id,
            "thread_id": update.get("thread_id"), "chat_seq": offset * SEQ_STRIDE + index,
            "causation_id": update["update_id"], "correlation_id": update.get("correlation_id") or "",
            "update_received_at_ms": update.get("received_at_ms") or now, "created_at_ms": now,
            "attempt": 0, "not_before_ms": 0, "first_error": None, "last_error": None,
            "platform_meta": meta, "traceparent": update.get("traceparent"),
        }

    def sweep_expired(self, index_keys: list[bytes], limit: int = 1000) -> int:
        """Delete dedupe entries older than the window, oldest first (`index_keys` in time order).

        Explicit deletes (tombstones on the changelog) — RocksDB TTL would drop keys only at compaction,
        and changelog recovery would bring expired keys back.
        """
        cutoff = self.now_ms() - self.window_ms
        removed = 0
        for index_key in index_keys[:limit]:
            ts, key = parse_expiry_index_key(index_key)
            if ts >= cutoff:
                break
            seen = self.dedupe.get(key)
            if seen is not None and seen["t"] == ts:
                del self.dedupe[key]
            del self.dedupe_index[index_key]
            removed += 1
        if removed:
            metrics.DEDUPE_EXPIRED.inc(removed)
        return removed


def chat_key_of(record: dict[str, Any]) -> str:
    return f"{record['platform']}:{record['bot_id']}:{record['chat_id']}"


def load_handlers(bots: BotRegistry, bot_loader: Callable[[str], Bot]) -> dict[str, Bot]:
    out: dict[str, Bot] = {}
    for bot in bots.values():
        if bot.handler:
            out[bot.id] = bot_loader(bot.handler)
    return out
