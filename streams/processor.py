"""What happens to one update: dedupe → enrich with conversation state → handler → route.

`UpdateProcessor` holds no Faust or Kafka objects: it reads and writes state through a `StateAccess`
(a view of the partition's store bound to the update's input position) and hands its output records
to an `Emit` callable, so the whole decision path runs in tests without a broker. Every path ends in
records — replies, events, a handoff copy, or a recorded failure — never a silently skipped update.

The handler runs as a task started eagerly (`botstream.core.eager.start_task_eagerly`): a handler
that never awaits anything real (most) is finished before `process` goes on, with no loop round trip
and no timer; one that does (an integration call) goes on in its own task under `handler_timeout_s`. Everything around it is synchronous: prepare (dedupe, state, routing),
then finish (events, replies, the state's fold) once the handler is done.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from botstream.core.bots import BotConfig, BotRegistry
from botstream.core.eager import start_task_eagerly
from botstream.core.logs import SampledSummary
from botstream.schemas.binary_compiler import UNION_TAG
from botstream.schemas.headers import CORRELATION_ID
from botstream.schemas.records import REPLY_META_KEYS, chat_key, parse_chat_key
from botstream.streams import metrics
from botstream.streams.conversation import ConversationState, apply_all, initial_state
from botstream.streams.dedupe import (
    Seen,
    Verdict,
    decide,
    dedupe_key,
    expiry_index_key,
    parse_expiry_index_key,
)
from botstream.streams.handlers import Bot, Context, Handler, PlannedReply
from botstream.streams.integrations import IntegrationPool

__all__ = ["CHATS", "CONVERSATIONS", "DEDUPE", "DEDUPE_INDEX", "Emit", "Outcome", "StateAccess", "UpdateProcessor",
           "chat_index_key", "chat_key_of", "load_handlers", "reply_id", "stable_id"]

log = logging.getLogger(__name__)

# The streams worker's tables (column families of a partition's store).
DEDUPE = "dedupe"
DEDUPE_INDEX = "dedupe-index"  # local only: rebuilt from `dedupe` on restore
CONVERSATIONS = "conversations"
CHATS = "chats"  # local only: "<bot id>\0<chat key>" for every chat with a conversation (scheduled jobs)

SEQ_STRIDE = 1000  # chat_seq = offset * SEQ_STRIDE + index: increasing per chat, same on reprocessing


class StateAccess(Protocol):
    """The tables as one input record sees them: reads see earlier writes; writes are that record's."""

    def get(self, table: str, key: bytes, default: Any = None) -> Any: ...
    def put(self, table: str, key: bytes, value: Any) -> None: ...
    def delete(self, table: str, key: bytes) -> None: ...


# (stream: "replies" | "messages" | "handoff", key, record, headers): hand the record to the producer
# in call order (its acknowledgement is checked once per checkpoint, before the offsets are committed).
Emit = Callable[[str, str, Mapping[str, Any], list[tuple[str, bytes]]], None]


def stable_id(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def reply_id(update: Mapping[str, Any], index: int) -> str:
    """Deterministic from the causing update and the reply's index: reprocessing yields the same ids."""
    return stable_id("reply", update["platform"], update["bot_id"], update["update_id"], index)


def chat_key_of(record: Mapping[str, Any]) -> str:
    return chat_key(record["platform"], record["bot_id"], record["chat_id"])


def chat_index_key(chat: str) -> bytes:
    """Key of a chat in the `chats` index: its bot first, so one bot's chats are one key range."""
    return f"{parse_chat_key(chat).bot_id}\0{chat}".encode()


@dataclass
class Outcome:
    verdict: str  # "handled", "duplicate", "from_bot", "handoff", "failed", "no_handler"
    replies: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Call:
    """An update whose handler is about to run."""

    update: dict[str, Any]
    chat: str
    state: ConversationState
    ctx: Context
    handler: Handler
    handler_bot: Bot | None
    bot: BotConfig | None
    events: list[dict[str, Any]]
    offset: int
    headers: list[tuple[str, bytes]]
    labels: tuple[str, str]
    deadline: float


class UpdateProcessor:
    def __init__(self, bots: BotRegistry, handlers: Mapping[str, Bot], *, emit: Emit, dedupe_window_s: float,
                 handler_timeout_s: float, clock: Callable[[], float] = time.time,
                 integrations: IntegrationPool | None = None, summary: SampledSummary | None = None) -> None:
        self.bots = bots
        self.handlers = handlers
        self.emit = emit
        self.window_ms = int(dedupe_window_s * 1000)
        self.handler_timeout_s = handler_timeout_s
        self.clock = clock
        self.integrations = integrations
        #: per-update lines at DEBUG, and a count by outcome at INFO every interval
        self.summary = summary or SampledSummary(log, "updates")

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def process(self, update: dict[str, Any], state: StateAccess, partition: int, offset: int,
                      headers: list[tuple[str, bytes]] | None = None) -> Outcome:
        """The whole path of one update. Completes without suspending unless the handler waits."""
        call = self._prepare(update, state, partition, offset, headers or [])
        if isinstance(call, Outcome):
            return call
        started = time.perf_counter()
        failure: str | None = None
        try:
            done, _, task = start_task_eagerly(cast(Coroutine[Any, Any, None], call.handler(call.ctx)))
            if not done:
                await asyncio.wait_for(cast(asyncio.Task[None], task), max(0.0, call.deadline - time.monotonic()))
        except TimeoutError:
            failure = f"timeout after {self.handler_timeout_s:g}s"
        except Exception as exc:  # noqa: BLE001 - a bot's bug becomes a recorded failure, never a crash
            failure = f"{type(exc).__name__}: {exc}"
        return self._finish(call, state, failure, time.perf_counter() - started)

    # -- before the handler ------------------------------------------------------------------------------
    def _prepare(self, update: dict[str, Any], state: StateAccess, partition: int, offset: int,
                 headers: list[tuple[str, bytes]]) -> Outcome | _Call:
        chat = chat_key_of(update)
        labels = (update["platform"], update["bot_id"])
        if update.get("from_bot"):
            metrics.updates(*labels, "from_bot").inc()
            self.summary.record("from_bot")
            return Outcome("from_bot")
        key = dedupe_key(update)
        now = self.now_ms()
        verdict = decide(state.get(DEDUPE, key), partition, offset, now, self.window_ms)
        if verdict is Verdict.DUPLICATE:
            metrics.updates(*labels, "duplicate").inc()
            metrics.duplicates(*labels).inc()
            self.summary.record("duplicate", "duplicate update dropped", correlation_id=update.get("correlation_id"),
                                chat_key=chat, update_id=update["update_id"])
            return Outcome("duplicate")
        if verdict is Verdict.NEW:
            state.put(DEDUPE, key, Seen(p=partition, o=offset, t=now))
            state.put(DEDUPE_INDEX, expiry_index_key(now, key), 0)

        conversation = self._state(state, chat)
        bot = self.bots.get(update["bot_id"])
        events = [self._event(update, chat, 0, now, "UpdateAccepted", update_id=update["update_id"],
                              kind=update["kind"], user_id=update.get("user_id"), text=update.get("text"),
                              locale=update.get("locale"))]
        out_headers = _out_headers(headers, update)
        if conversation["handoff"]:
            self.emit("handoff", chat, update, out_headers)
            outcome = Outcome("handoff", events=events)
            self._commit(chat, conversation, outcome, state, out_headers)
            metrics.updates(*labels, "handoff").inc()
            self.summary.record("handoff")
            return outcome

        handler_bot = self.handlers.get(update["bot_id"])
        handler = handler_bot.route(update) if handler_bot else None
        if handler is None:
            outcome = Outcome("no_handler", events=events)
            self._commit(chat, conversation, outcome, state, out_headers)
            metrics.updates(*labels, "no_handler").inc()
            self.summary.record("no_handler")
            return outcome

        # The integrations get the moment the timeout fires, so their waits and retries end before it.
        deadline = time.monotonic() + self.handler_timeout_s
        bound = self.integrations.bind(update["bot_id"], correlation_id=update.get("correlation_id"),
                                       chat_key=chat, deadline=deadline) if self.integrations is not None else {}
        bot_state = conversation["bot_state"]
        ctx = Context(update=update, chat_key=chat, bot=bot, state=copy.deepcopy(bot_state) if bot_state else {},
                      conversation=dict(conversation), integrations=bound, deadline=deadline)
        return _Call(update, chat, conversation, ctx, handler, handler_bot, bot, events, offset, out_headers, labels,
                     deadline)

    # -- after the handler -------------------------------------------------------------------------------
    def _finish(self, call: _Call, state: StateAccess, failure: str | None, seconds: float) -> Outcome:
        update, chat, ctx, events, labels = call.update, call.chat, call.ctx, call.events, call.labels
        metrics.handler_seconds(*labels).observe(seconds)
        now = self.now_ms()
        if failure is not None:
            metrics.handler_failures(*labels, "timeout" if failure.startswith("timeout") else "error").inc()
            log.warning("handler failed: %s", failure, extra={"correlation_id": update.get("correlation_id"),
                                                               "chat_key": chat, "update_id": update["update_id"]})
            events.append(self._event(update, chat, len(events), now, "HandlerFailed", update_id=update["update_id"],
                                      handler=getattr(call.handler, "__name__", "handler"), reason=failure[:500]))
            fallback = (call.bot.fallback_text if call.bot and call.bot.fallback_text else None) or \
                (call.handler_bot.fallback_text if call.handler_bot else None)
            planned = [PlannedReply(text=fallback)] if fallback else []
        else:
            planned = ctx.replies
        replies = [self.build_reply(update, chat, i, p, call.offset, now) for i, p in enumerate(planned)]
        for r in replies:
            events.append(self._event(update, chat, len(events), now, "ReplyPlanned", reply_id=r["reply_id"],
                                      kind=r["kind"], text=r["text"], chat_seq=r["chat_seq"]))
        if failure is None and ctx.state != call.state["bot_state"]:
            events.append(self._event(update, chat, len(events), now, "StateChanged",
                                      state_json=json.dumps(ctx.state, sort_keys=True, default=str)))
        if failure is None and ctx.handoff_requested:
            events.append(self._event(update, chat, len(events), now, "HandoffRequested", reason=ctx.handoff_reason))
        outcome = Outcome("failed" if failure else "handled", replies=replies, events=events)
        self._commit(chat, call.state, outcome, state, call.headers)
        metrics.updates(*labels, outcome.verdict).inc()
        if replies:
            metrics.replies_planned(*labels).inc(len(replies))
        self.summary.record(outcome.verdict, "update handled", correlation_id=update.get("correlation_id"),
                            chat_key=chat, update_id=update["update_id"], bot=update["bot_id"], replies=len(replies))
        return outcome

    def _commit(self, chat: str, conversation: ConversationState, outcome: Outcome, state: StateAccess,
                headers: list[tuple[str, bytes]]) -> None:
        """Events first (the log is the truth), then replies in order, then the table (a cache of the fold).
        Nothing is awaited: the worker checks every acknowledgement before it commits the input offset."""
        emit = self.emit
        for event in outcome.events:
            emit("messages", chat, event, headers)
        for reply in outcome.replies:
            emit("replies", chat, reply, headers)
        self._save(chat, conversation, outcome.events, state)

    def record_external(self, event: dict[str, Any], state: StateAccess) -> None:
        """Fold an event produced elsewhere (delivery outcomes, handoff release) into the table."""
        chat = event["chat_key"]
        self._save(chat, self._state(state, chat), [event], state)

    @staticmethod
    def _save(chat: str, conversation: ConversationState, events: list[dict[str, Any]], state: StateAccess) -> None:
        if conversation["last_event_id"] is None:  # the chat's first event: index it for scheduled jobs
            state.put(CHATS, chat_index_key(chat), 0)
        state.put(CONVERSATIONS, chat.encode(), apply_all(conversation, events))

    @staticmethod
    def _state(state: StateAccess, chat: str) -> ConversationState:
        value = state.get(CONVERSATIONS, chat.encode())
        return value if value is not None else initial_state(chat)

    @staticmethod
    def _event(update: Mapping[str, Any], chat: str, index: int, now_ms: int, event_type: str,
               **payload: Any) -> dict[str, Any]:
        return {
            "event_id": stable_id("event", update["platform"], update["bot_id"], update["update_id"], index),
            "causation_id": update["update_id"], "correlation_id": update.get("correlation_id") or "",
            "chat_key": chat, "at_ms": now_ms, "payload": {UNION_TAG: event_type, **payload},
        }

    def build_reply(self, update: Mapping[str, Any], chat: str, index: int, planned: PlannedReply, offset: int,
                    now: int | None = None) -> dict[str, Any]:
        now = self.now_ms() if now is None else now
        meta = update.get("platform_meta") or {}
        if meta:
            meta = {k: v for k, v in meta.items() if k in REPLY_META_KEYS}
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

    def sweep_expired(self, index_items: list[tuple[bytes, Any]], state: StateAccess) -> int:
        """Delete dedupe entries older than the window, oldest first (`index_items` in time order).

        Explicit deletes (tombstones on the changelog) — RocksDB TTL would drop keys only at compaction,
        and changelog recovery would bring expired keys back.
        """
        cutoff = self.now_ms() - self.window_ms
        removed = 0
        for index_key, _ in index_items:
            ts, key = parse_expiry_index_key(index_key)
            if ts >= cutoff:
                break
            seen = state.get(DEDUPE, key)
            if seen is not None and seen["t"] == ts:
                state.delete(DEDUPE, key)
            state.delete(DEDUPE_INDEX, index_key)
            removed += 1
        if removed:
            metrics.DEDUPE_EXPIRED.inc(removed)
        return removed


def _out_headers(inbound: list[tuple[str, bytes]], update: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    corr = update.get("correlation_id")
    if not corr:
        return inbound
    return [*(h for h in inbound if h[0] != CORRELATION_ID), (CORRELATION_ID, str(corr).encode())]


def load_handlers(bots: BotRegistry, bot_loader: Callable[[str], Bot]) -> dict[str, Bot]:
    out: dict[str, Bot] = {}
    for bot in bots.values():
        if bot.handler:
            out[bot.id] = bot_loader(bot.handler)
    return out
