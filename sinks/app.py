"""The sinks worker: Faust consumes `replies` and `replies.retry.<n>`; `StatefulRuntime` does the rest.

    replies ─▶ decode (undecodable → quarantine) ─▶ hold/release gate ─▶ ReplyDeliverer ─▶ settle
    replies.retry.<n> ─▶ wait for its not-before (only its chat waits) ─▶ its chat's live hop? ─▶
        ReplyDeliverer ─▶ settle ─▶ release the chat's held replies in order

Two lanes of chats (`botstream.core.runtime.Lane`): new replies, bounded by `chat_concurrency`, and
retry records, which sleep until their not-before time in their chat's own task (a coroutine each,
not a connection), so a full retry level never stalls the intake of new replies. A chat's steps in
both lanes run under its lock (`ChatLocks`), so its hold state is read and written by one at a time.

State, one store per partition, co-partitioned with the chat topics:
- `ledger`   reply id -> fate. A delivery is written through at once (`put_fact`): the platform has
             the message, whatever happens to the offsets, so a reply re-read after a crash is skipped.
             Final failures go with their DLQ record, at the checkpoint;
- `chats`    chat key -> blocker in the retry chain + queue bounds (`sinks.hold.HoldBack`);
- `held`     chat key + index -> reply waiting behind the blocker.

Nothing on the way out is awaited per reply: delivery results, retry records and DLQ records go to
the output producer, and the checkpoint flushes them (with the changelogs) before it commits the
offsets that caused them (`botstream.core.state.checkpoint`). A retry record and the block it causes,
a DLQ record and the failure it records, become durable together or not at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer

from botstream.core.bots import BotRegistry
from botstream.core.codec import codec_for
from botstream.core.faust_app import add_metrics_page, add_readiness_page, worker_app
from botstream.core.generation import Abandoned
from botstream.core.kafka import consumer_config, header_map, producer_config
from botstream.core.logs import SampledSummary
from botstream.core.producer import OutputProducer
from botstream.core.runtime import Lane, RuntimeOptions, StatefulRuntime, StateView
from botstream.core.settings import Settings
from botstream.core.state.store import StoreOptions, TableSpec
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.schemas.headers import CORRELATION_ID, REPLAY_OF, RETRY_HOP
from botstream.schemas.records import parse_chat_key
from botstream.schemas.topics import (
    SINKS_LEDGER_KEEP_MS,
    changelog_topic,
    producer_max_message_bytes,
    retry_topic,
)
from botstream.sinks import metrics
from botstream.sinks.budget import Budgets
from botstream.sinks.chatlocks import ChatLocks
from botstream.sinks.delivery import (
    MAX_GROUP,
    DeadLetter,
    Duplicate,
    Park,
    ReplyDeliverer,
    Sent,
    Skipped,
    Verdict,
)
from botstream.sinks.errors import InvalidRetryHeaders
from botstream.sinks.hold import Admission, HoldBack, hop_id
from botstream.sinks.ledger import DELIVERED, DeliveryLedger
from botstream.sinks.results import FinalOutcome, dead_letter, delivery_result, log_fields, origin_of
from botstream.sinks.retry import RetryChain, RetryHeaders, decode_retry_headers, encode_retry_headers
from botstream.sinks.sender import HttpSender

log = logging.getLogger(__name__)

LEDGER, CHATS, HELD = "ledger", "chats", "held"
RETRY_MAX_CHATS = 100_000  # sleeping retry records cost a coroutine each, not a connection
LEDGER_KEEP_MS = SINKS_LEDGER_KEEP_MS  # replies and retry topics keep records 7 days
SWEEP_EVERY_S = 60.0
SWEEP_BATCH = 1000


class _Tables:
    """The sinks' tables as one event sees them."""

    __slots__ = ("hold", "ledger")

    def __init__(self, view: StateView) -> None:
        ledger = view.table(LEDGER)
        self.ledger = DeliveryLedger(ledger, ledger.write_fact)
        self.hold = HoldBack(view.table(CHATS), view.table(HELD))


class SinksWorker:
    def __init__(self, settings: Settings, bots: BotRegistry, *, codec: Codec | None = None,
                 sender: HttpSender | None = None) -> None:
        self.settings = settings
        self.bots = bots
        self.codec = codec or codec_for(settings)
        app_id = f"{settings.topic_prefix}-sinks"
        self.app = app = worker_app(settings, app_id, settings.sinks_web_port, "sinks", own_commits=True)
        self.replies_name = settings.topic("replies")
        self.chain = RetryChain.from_settings(settings)
        self.retry_names = {level: retry_topic(settings, level) for level in range(1, self.chain.levels + 1)}
        self.retry_level_of = {name: level for level, name in self.retry_names.items()}
        self.dlq_name = settings.topic("replies.dlq")
        self.deliveries_name = settings.topic("deliveries")
        self.quarantine_name = settings.topic("quarantine")
        largest = producer_max_message_bytes(
            settings, [f"replies.retry.{n}" for n in self.retry_names] + ["replies.dlq", "deliveries", "quarantine"])
        sized: dict[str, Any] = {"message.max.bytes": largest}  # the largest record these topics take
        self.outputs = OutputProducer(producer_config(settings, client_id=app_id, **sized))
        changelog = OutputProducer(producer_config(settings, client_id=f"{app_id}-changelog"), track_offsets=True)
        tables = [TableSpec(name, changelog_topic(settings, "sinks", name)) for name in (LEDGER, CHATS, HELD)]
        inputs = [self.replies_name, *self.retry_names.values()]
        self.runtime = StatefulRuntime(
            app, "sinks", self._step, _chat_of, tables, settings.data_dir / "sinks" / "state", self.outputs,
            changelog, lambda: Consumer(consumer_config(settings, app_id)), inputs,
            options=RuntimeOptions(max_in_flight=RETRY_MAX_CHATS, checkpoint_interval_s=settings.checkpoint_interval_s),
            store_options=StoreOptions(settings.rocksdb_block_cache_bytes, settings.rocksdb_write_buffer_bytes),
            lanes=[Lane("replies", max_busy=settings.chat_concurrency, own_task=True),
                   Lane("retry", max_busy=RETRY_MAX_CHATS, own_task=True)],
            lane_of=lambda topic: "replies" if topic == self.replies_name else "retry",
            on_checkpoint=self._on_checkpoint, on_given_back=metrics.ABANDONED.inc)
        self.generation = self.runtime.generation
        self.locks = ChatLocks()
        self.budgets = Budgets(bots)
        self.sender = sender or HttpSender.from_settings(settings)
        self.deliverer = ReplyDeliverer(bots, self.sender, self.budgets, self.chain, self.generation)
        self._coalesced: set[str] = set()
        self.summary = SampledSummary(log, "replies")  # per-reply lines at DEBUG, counts at INFO
        self._sweep_at: dict[int, float] = {}
        self._sweep_cursor: dict[int, bytes | None] = {}

        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        prefix = settings.topic_prefix

        async def replies_agent(stream: Any) -> None:
            await self.runtime.consume(stream)

        app.agent(app.topic(self.replies_name, **raw), name=f"{prefix}-sinks-replies")(replies_agent)
        for level, name in self.retry_names.items():
            async def retry_agent(stream: Any) -> None:
                await self.runtime.consume(stream)

            retry_agent.__name__ = f"sinks_retry_{level}"
            app.agent(app.topic(name, **raw), name=f"{prefix}-sinks-retry-{level}")(retry_agent)
        app.rebalance_start_callbacks.append(self._coalesced.clear)
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        add_metrics_page(app)
        add_readiness_page(app, self.runtime.ready)

    # -- one event ---------------------------------------------------------------------------------
    async def _step(self, event: Any, view: StateView | None, generation: int) -> None:
        assert view is not None
        msg = event.message
        try:
            if msg.topic == self.replies_name:
                await self._process_reply(event, view, generation)
            else:
                await self._process_retry(event, view, generation)
            self._maybe_sweep(msg.partition, view)
        except Abandoned:
            raise
        except Exception as exc:  # noqa: BLE001 - our own bug: keep the reply where people will see it
            log.exception("reply could not be handled; dead-lettering it", extra={"chat_key": _chat_of(event)})
            await self._dead_letter_after_bug(event, view, exc)

    async def _process_reply(self, event: Any, view: StateView, generation: int) -> None:
        reply = self._decoded(event)
        if reply is None:
            return
        headers = header_map(event.message.headers)
        chat = str(reply["chat_key"])
        replayed = REPLAY_OF in headers
        async with self.locks.hold(chat):
            self.generation.check(generation)
            t = _Tables(view)
            if reply["reply_id"] in self._coalesced:  # went out inside an earlier reply's message
                self._coalesced.discard(reply["reply_id"])
                return
            if replayed and t.ledger.forget_failure(reply["reply_id"]):
                log.info("replaying a dead-lettered reply", extra=log_fields(reply))
            admission = t.hold.admit(chat, reply, replayed=replayed)
            if admission is Admission.SEND:
                verdict = await self.deliverer.deliver(reply, generation=generation, ledger=t.ledger,
                                                       followers=lambda: self._queued_followers(chat, generation))
                self._settle(t, reply, verdict, _origin(event))
                if isinstance(verdict, Sent):
                    self._coalesced.update(r["reply_id"] for r in verdict.group[1:])
            elif admission is Admission.HOLD:
                metrics.HELD.labels(reply["platform"], reply["bot_id"]).inc()
                log.debug("reply held behind its chat's reply in the retry chain", extra=log_fields(reply))
                if t.hold.state(chat).blocker is None:  # leftovers of a crash mid-release
                    await self._drain(t, chat, _origin(event), generation)
            else:
                log.info("copy of a reply already %s; skipped",
                         "in the retry chain" if admission is Admission.IN_CHAIN else "held", extra=log_fields(reply))

    def _queued_followers(self, chat: str, generation: int) -> list[dict[str, Any]]:
        """The chat's replies queued behind the one being sent, decoded, up to the first that may not
        be merged (undecodable, a replay, from an older generation, already merged)."""
        out: list[dict[str, Any]] = []
        for taken in self.runtime.runner_of(self.replies_name).waiting(chat)[:MAX_GROUP]:
            if taken.generation != generation:
                break
            msg = taken.event.message
            try:
                reply = self.codec.decode("reply", msg.value)
            except DecodeError:
                break
            if REPLAY_OF in header_map(msg.headers) or reply["chat_key"] != chat \
                    or reply["reply_id"] in self._coalesced:
                break
            out.append(reply)
        return out

    # -- the retry chain --------------------------------------------------------------------------------
    async def _process_retry(self, event: Any, view: StateView, generation: int) -> None:
        reply = self._decoded(event)
        if reply is None:
            await self._lost_hop(event, view, generation)
            return
        chat = str(reply["chat_key"])
        delay_s = (int(reply.get("not_before_ms") or 0) - self.deliverer.now_ms()) / 1000
        if delay_s > 0:  # in this chat's task: other chats and partitions are not held up
            await self.generation.sleep(delay_s, generation)
        async with self.locks.hold(chat):
            self.generation.check(generation)
            t = _Tables(view)
            if not t.hold.is_live(chat, reply):
                metrics.STALE_RETRIES.inc()
                log.debug("retry record is not its chat's live hop; dropped", extra=log_fields(reply))
                if t.hold.state(chat).blocker is None:
                    await self._drain(t, chat, _origin(event), generation)
                return
            verdict = await self.deliverer.deliver(
                reply, generation=generation, ledger=t.ledger,
                followers=lambda: [dict(r) for r in t.hold.peek(chat, MAX_GROUP)])
            if self._settle(t, reply, verdict, self._retry_origin(event)):
                t.hold.unblock(chat)
                if isinstance(verdict, Sent) and len(verdict.group) > 1:
                    t.hold.release(chat, len(verdict.group) - 1)
                await self._drain(t, chat, _origin(event), generation)

    async def _lost_hop(self, event: Any, view: StateView, generation: int) -> None:
        """An undecodable retry record (now in quarantine, with its origin) that is exactly its chat's
        live hop: the reply can no longer be read, so it is recorded as dead-lettered (the quarantine
        record holds its bytes) and the chat's held replies go on instead of waiting for it forever."""
        msg = event.message
        level = self.retry_level_of.get(msg.topic)
        try:
            platform, bot_id, _ = parse_chat_key(msg.key or b"")
        except ValueError:
            return
        if level is None:
            return
        chat = msg.key.decode(errors="replace")
        headers = header_map(msg.headers)
        hop = headers.get(RETRY_HOP)
        async with self.locks.hold(chat):
            self.generation.check(generation)
            t = _Tables(view)
            blocker = t.hold.lost_hop(chat, level, hop.decode(errors="replace") if hop else None)
            if blocker is None:
                return  # not the live hop: quarantined, and the chat still waits for the real one
            lost = {"reply_id": blocker.reply_id, "chat_key": chat, "platform": platform, "bot_id": bot_id,
                    "correlation_id": headers.get(CORRELATION_ID, b"").decode(errors="replace")}
            reason = f"retry record undecodable; quarantined from {_origin(event)}"
            now_ms = self.deliverer.now_ms()
            t.ledger.record(blocker.reply_id, "dead_lettered", now_ms)
            self._result(lost, "dead_lettered", blocker.attempt, now_ms, error_code="undecodable", error=reason)
            log.error("a chat's reply in the retry chain could not be read; recorded as dead-lettered",
                      extra={"chat_key": chat, "reply_id": blocker.reply_id, "correlation_id": lost["correlation_id"]})
            t.hold.unblock(chat)
            await self._drain(t, chat, _origin(event), generation)

    async def _drain(self, t: _Tables, chat: str, origin: str, generation: int) -> None:
        """Release the chat's held replies in order, until it is empty or one of them is parked."""
        while True:
            self.generation.check(generation)
            st = t.hold.state(chat)
            if st.blocker is not None or st.held == 0:
                return
            reply = t.hold.head(chat)
            if reply is None:
                continue
            verdict = await self.deliverer.deliver(
                reply, generation=generation, ledger=t.ledger,
                followers=lambda: [dict(r) for r in t.hold.peek(chat, MAX_GROUP + 1)[1:]])
            self._settle(t, reply, verdict, origin)
            if isinstance(verdict, Park):
                return
            t.hold.release(chat, len(verdict.group) if isinstance(verdict, Sent) else 1)

    # -- settling a verdict ---------------------------------------------------------------------------------
    def _settle(self, t: _Tables, reply: Mapping[str, Any], verdict: Verdict, origin: str | None) -> bool:
        """Record what happened to `reply`; False when it went to the retry chain (not settled yet)."""
        now_ms = self.deliverer.now_ms()
        labels = (reply["platform"], reply["bot_id"])
        if isinstance(verdict, Sent):
            for r in verdict.group:
                t.ledger.record(r["reply_id"], DELIVERED, now_ms, verdict.message_id)
                self._result(r, "delivered", int(r.get("attempt") or 0) + 1, now_ms,
                             message_id=verdict.message_id, http_status=verdict.http_status)
                received = int(r.get("update_received_at_ms") or 0)
                if received:
                    metrics.end_to_end(*labels).observe(max(0, now_ms - received) / 1000)
                self.summary.record("delivered", "reply delivered", **log_fields(r, status=verdict.http_status))
            if len(verdict.group) > 1:
                metrics.COALESCED.labels(*labels).inc(len(verdict.group) - 1)
            return True
        if isinstance(verdict, Duplicate):
            metrics.LEDGER_SKIPS.labels(*labels).inc()
            self.summary.record("skipped_duplicate", "reply already settled; copy skipped",
                                **log_fields(reply, ledger=verdict.entry.status))
            self._result(reply, "skipped_duplicate", 0, now_ms, message_id=verdict.entry.message_id)
            return True
        if isinstance(verdict, Skipped):
            self.summary.record("unsupported")
            t.ledger.record(reply["reply_id"], "failed_permanent", now_ms)
            self._result(reply, "failed_permanent", 0, now_ms, error_code="unsupported", error=verdict.reason)
            return True
        if isinstance(verdict, DeadLetter):
            record, headers = dead_letter(verdict.reply, verdict.reason, verdict.outcome, at_ms=now_ms, origin=origin)
            self.outputs.produce(self.dlq_name, self.codec.encode("reply", record, topic=self.dlq_name),
                                 str(reply["chat_key"]).encode(), headers=headers)
            t.ledger.record(reply["reply_id"], verdict.outcome, now_ms)  # durable with the DLQ record
            metrics.DLQ_RECORDS.labels(*labels, verdict.outcome).inc()
            self.summary.record(verdict.outcome)
            log.warning("reply dead-lettered: %s", verdict.reason,
                        extra=log_fields(record, reason=verdict.outcome, status=verdict.http_status))
            self._result(record, verdict.outcome, int(record.get("attempt") or 0), now_ms,
                         http_status=verdict.http_status, error_code=verdict.error_code, error=verdict.reason)
            return True
        assert isinstance(verdict, Park)
        record = verdict.record
        headers = encode_retry_headers(RetryHeaders.from_reply(record, origin))
        headers.append((RETRY_HOP, hop_id(str(record["reply_id"]), int(record.get("attempt") or 0)).encode()))
        if record.get("correlation_id"):
            headers.append((CORRELATION_ID, str(record["correlation_id"]).encode()))
        topic = self.retry_names[verdict.level]
        self.outputs.produce(topic, self.codec.encode("reply", record, topic=topic), str(reply["chat_key"]).encode(),
                             headers=headers)
        t.hold.block(str(reply["chat_key"]), record, verdict.level)  # durable with the retry record
        metrics.RETRY_RECORDS.labels(*labels, str(verdict.level)).inc()
        self.summary.record(f"retry.{verdict.level}")
        delay_s = max(0.0, (int(record["not_before_ms"]) - now_ms) / 1000)
        log.info("reply to retry level %d in %.1fs: %s", verdict.level, delay_s, verdict.reason,
                 extra=log_fields(record, delay_s=round(delay_s, 3), reason=verdict.reason))
        return False

    def _result(self, reply: Mapping[str, Any], outcome: FinalOutcome, attempts: int, at_ms: int,
                **fields: Any) -> None:
        result = delivery_result(reply, outcome, at_ms=at_ms, attempts=attempts, **fields)
        metrics.deliveries(reply["platform"], reply["bot_id"], outcome).inc()
        self.outputs.produce(self.deliveries_name, self.codec.encode("delivery_result", result, topic=self.deliveries_name),
                             str(reply["chat_key"]).encode())

    async def _dead_letter_after_bug(self, event: Any, view: StateView, exc: Exception) -> None:
        reply = self._decoded(event, quarantine=False)
        if reply is None:
            return
        chat = str(reply["chat_key"])
        try:
            async with self.locks.hold(chat):
                t = _Tables(view)
                verdict = DeadLetter(dict(reply), f"internal error: {type(exc).__name__}: {exc}", "dead_lettered")
                self._settle(t, reply, verdict, _origin(event))
                if event.message.topic != self.replies_name and t.hold.is_live(chat, reply):
                    t.hold.unblock(chat)
        except Exception:  # noqa: BLE001
            log.exception("could not dead-letter the reply either", extra=log_fields(reply))

    # -- helpers -----------------------------------------------------------------------------------------------
    def _decoded(self, event: Any, *, quarantine: bool = True) -> dict[str, Any] | None:
        msg = event.message
        try:
            return self.codec.decode("reply", msg.value)
        except DecodeError as exc:
            if not quarantine:
                return None
            if exc.retriable:  # the schema registry is unreachable: the record is fine, do not skip it
                raise
            exc.with_origin(msg.topic, msg.partition, msg.offset, msg.key)
            metrics.QUARANTINED.labels(msg.topic).inc()
            log.warning("undecodable record quarantined: %s", exc.reason,
                        extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset})
            record = exc.to_quarantine_record("sinks", int(time.time() * 1000))
            self.outputs.produce(self.quarantine_name, self.codec.encode("quarantine", record, topic=self.quarantine_name))
            return None

    def _retry_origin(self, event: Any) -> str:
        try:
            origin = decode_retry_headers(header_map(event.message.headers)).origin
        except InvalidRetryHeaders as exc:  # the value is authoritative; headers are for people
            log.warning("unreadable retry headers: %s", exc, extra={"topic": event.message.topic})
            origin = None
        return origin or _origin(event)

    def _maybe_sweep(self, partition: int, view: StateView) -> None:
        """Delete ledger entries past the window in which a copy of their reply can still arrive."""
        now = time.monotonic()
        if now - self._sweep_at.get(partition, 0.0) < SWEEP_EVERY_S:
            return
        self._sweep_at[partition] = now
        part = self.runtime.partitions.get(partition)
        if part is None:
            return
        cursor = self._sweep_cursor.get(partition)
        items = list(part.store.scan(LEDGER, cursor or b"", limit=SWEEP_BATCH))
        cutoff = self.deliverer.now_ms() - LEDGER_KEEP_MS
        deleted, last = DeliveryLedger(view.table(LEDGER)).sweep(items, cutoff, SWEEP_BATCH)
        self._sweep_cursor[partition] = None if len(items) < SWEEP_BATCH else last  # at the end: start over
        if deleted:
            log.info("ledger: %d entries past the window deleted", deleted, extra={"partition": partition})

    def _on_checkpoint(self, seconds: float) -> None:
        for lane, runner in self.runtime.runners.items():
            metrics.IN_FLIGHT.labels(lane).set(runner.busy)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        owned = sum(1 for tp in assigned if tp.topic == self.replies_name)
        total = self.app.consumer.topic_partitions(self.replies_name) or self.settings.partitions
        share = self.budgets.rescale(owned, total)
        metrics.OWNED_PARTITIONS.set(owned)
        for bot in self.bots.values():
            metrics.BUDGET_SHARE.labels(bot.id).set(share)
        log.info("assigned %d of %d partitions of %s: this worker sends %.0f%% of each bot's budget",
                 owned, total, self.replies_name, share * 100)

    async def _on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        await self.runtime.stop()  # sends in flight end (and are recorded) before the clients close
        self.summary.close()
        await self.sender.aclose()


def _chat_of(event: Any) -> str:
    key = event.message.key
    return key.decode(errors="replace") if isinstance(key, bytes) else f"partition-{event.message.partition}"


def _origin(event: Any) -> str:
    msg = event.message
    return origin_of(msg.topic, msg.partition, msg.offset)
