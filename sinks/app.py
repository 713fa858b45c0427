"""The sinks worker: a Faust app (aiokafka, RocksDB tables) that delivers `replies` to the platforms.

Agents, each with its own ChatScheduler (chats concurrent, each chat in order, offsets acknowledged in
order), so a full retry level never stalls the intake of new replies:

- `replies`: decode (undecodable -> quarantine) -> hold/release gate -> `ReplyDeliverer`.
- `replies.retry.<n>`: wait for the record's not-before inside the chat's own task (other chats and
  partitions go on), then retry it if it is still its chat's live hop, then release the chat's held
  replies in order.

Tables, co-partitioned with the chat topics (same key, same partition count, so one worker owns a
chat's replies, its retries and its state):
- `ledger`   reply id -> fate (delivered / dead-lettered), checked before every send;
- `chats`    chat key -> blocker in the retry chain + queue bounds (`botstream.sinks.hold.HoldBack`);
- `held`     chat key + index -> reply waiting behind the blocker.

Every table read and write happens in the task of the event being handled, with Faust's
`_current_event` set to that event, so the changelog record goes to the event's partition. All steps
on one chat run under its lock (`ChatLocks`): the `replies` agent and the retry agents take turns.

Settling a verdict writes in an order that survives a crash at any point: a retry record is durable
before the chat is marked blocked by it; the ledger is written before a held reply leaves the queue;
the DLQ record is durable before the reply's failure is recorded. Redoing any step is then either a
no-op (ledger, stale hop) or the same step again.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.streams import _current_event

from botstream.core.bots import BotRegistry
from botstream.core.codec import codec_for
from botstream.core.faust_app import add_metrics_page, faust_app, rocksdb_options
from botstream.core.scheduler import ChatScheduler
from botstream.core.settings import Settings
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.schemas.topics import SINKS_LEDGER_KEEP_MS, changelog_configs, retry_topic
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
from botstream.sinks.generation import Abandoned, Generation
from botstream.sinks.hold import Admission, HoldBack
from botstream.sinks.ledger import DELIVERED, DeliveryLedger
from botstream.sinks.results import (
    CORRELATION_HEADER,
    HEADER_REPLAY_OF,
    FinalOutcome,
    dead_letter,
    delivery_result,
    log_fields,
    origin_of,
)
from botstream.sinks.retry import RetryHeaders, RetryPolicy, decode_retry_headers, encode_retry_headers
from botstream.sinks.sender import HttpSender

log = logging.getLogger(__name__)

RETRY_MAX_CHATS = 100_000  # sleeping retry records cost a coroutine each, not a connection
RETRY_MAX_IN_FLIGHT = 20_000
LEDGER_KEEP_MS = SINKS_LEDGER_KEEP_MS  # replies and retry topics keep records 7 days
SWEEP_EVERY_S = 60.0
SWEEP_BATCH = 1000


@dataclass(eq=False)
class Work:
    """An event taken from a topic, tagged with the generation it was taken in."""

    event: Any
    generation: int
    source: str  # "replies" or "retry"
    reply: dict[str, Any] | None = None
    headers: dict[str, bytes] = field(default_factory=dict)

    @property
    def message(self) -> Any:
        return self.event.message


class SinksWorker:
    def __init__(self, settings: Settings, bots: BotRegistry, *, codec: Codec | None = None,
                 sender: HttpSender | None = None) -> None:
        self.settings = settings
        self.bots = bots
        self.codec = codec or codec_for(settings)
        self.app = app = faust_app(settings, f"{settings.topic_prefix}-sinks", settings.sinks_web_port, "sinks")
        self.replies_name = settings.topic("replies")
        self.replies_topic = _raw_topic(app, self.replies_name)
        self.policy = RetryPolicy.from_settings(settings)
        self.retry_names = {level: retry_topic(settings, level) for level in range(1, self.policy.levels + 1)}
        self.retry_topics = {level: _raw_topic(app, name) for level, name in self.retry_names.items()}
        self.retry_level_of = {name: level for level, name in self.retry_names.items()}
        self.dlq_name = settings.topic("replies.dlq")
        self.dlq_topic = _raw_topic(app, self.dlq_name)
        self.deliveries_topic = _raw_topic(app, settings.topic("deliveries"))
        self.quarantine_topic = _raw_topic(app, settings.topic("quarantine"))

        opts = rocksdb_options(settings)
        ledger_cfg = changelog_configs(settings, "sinks", "ledger")
        # key_type=bytes -> raw keys; no value_type -> JSON values (faust derives the changelog's codecs
        # from these, not from a Schema).
        self.ledger_table = app.Table("ledger", partitions=settings.partitions, key_type=bytes,
                                      extra_topic_configs=ledger_cfg, options=dict(opts))
        self.chats_table = app.Table("chats", partitions=settings.partitions, key_type=bytes, options=dict(opts),
                                     extra_topic_configs=changelog_configs(settings, "sinks", "chats"))
        self.held_table = app.Table("held", partitions=settings.partitions, key_type=bytes, options=dict(opts),
                                    extra_topic_configs=changelog_configs(settings, "sinks", "held"))
        self.ledger = DeliveryLedger(self.ledger_table)
        self.hold = HoldBack(self.chats_table, self.held_table)

        self.generation = Generation()
        self.locks = ChatLocks()
        self.budgets = Budgets(bots)
        self.sender = sender or HttpSender(settings.send_timeout_s)
        self.deliverer = ReplyDeliverer(bots, self.sender, self.budgets, self.policy, self.generation)
        self._coalesced: set[str] = set()
        self._paused = False
        self._sweep_at: dict[int, float] = {}
        self._sweep_cursor: dict[int, bytes | None] = {}

        self.schedulers: dict[str, ChatScheduler[Work]] = {
            "replies": ChatScheduler(self._process, self._ack, chat_of=_chat_of, position_of=_position_of,
                                     max_chats=settings.chat_concurrency,
                                     max_in_flight=max(100, settings.chat_concurrency * 20))}
        prefix = settings.topic_prefix
        app.agent(self.replies_topic, name=f"{prefix}-sinks-replies")(self._agent_for("replies"))
        for level, topic in self.retry_topics.items():
            source = f"retry.{level}"
            self.schedulers[source] = ChatScheduler(self._process, self._ack, chat_of=_chat_of,
                                                    position_of=_position_of, max_chats=RETRY_MAX_CHATS,
                                                    max_in_flight=RETRY_MAX_IN_FLIGHT)
            app.agent(topic, name=f"{prefix}-sinks-retry-{level}")(self._agent_for(source))
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        # Faust waits for every event it handed out before it lets partitions go; ours may sleep for a
        # retry delay, so as soon as a rebalance or a stop begins, give the unfinished ones back.
        start_rebalance = app.on_rebalance_start

        def on_rebalance_start() -> None:
            start_rebalance()
            self._give_back_all("rebalance")

        app.on_rebalance_start = on_rebalance_start  # type: ignore[method-assign]
        stop_app = app.on_stop

        async def on_stop() -> None:
            self._give_back_all("stopping")
            try:
                await stop_app()
            finally:
                await self.sender.aclose()

        app.on_stop = on_stop  # type: ignore[method-assign]
        add_metrics_page(app)

    # -- agents and the event lifecycle -------------------------------------------------------------
    def _agent_for(self, source: str) -> Any:
        scheduler = self.schedulers[source]
        kind = "replies" if source == "replies" else "retry"

        async def agent(stream: Any) -> None:  # faust.Stream
            async for event in stream.noack().events():
                if self._paused:  # between a rebalance's start and its assignment: not ours to start
                    self._forget(event)
                    continue
                await scheduler.submit(Work(event, self.generation.current, kind))
                metrics.IN_FLIGHT.labels(source).set(scheduler.in_flight)

        agent.__name__ = f"sinks_{source.replace('.', '_')}"
        return agent

    def _give_back_all(self, why: str) -> None:
        self._paused = True
        generation = self.generation.bump()
        self._coalesced.clear()
        log.info("generation %d (%s): unfinished events are given back, unacknowledged", generation, why)

    def _forget(self, event: Any) -> None:
        """Drop an event we will not finish from Faust's unacknowledged set, without acknowledging it:
        its offset is not committed, so the partition's next owner reads it again."""
        self.app.consumer.unacked.discard(event.message)
        metrics.ABANDONED.inc()

    def _ack(self, work: Work) -> None:
        if self.generation.is_current(work.generation):
            work.event.ack()
        else:
            self._forget(work.event)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        owned = sum(1 for tp in assigned if tp.topic == self.replies_name)
        total = self.app.consumer.topic_partitions(self.replies_name) or self.settings.partitions
        share = self.budgets.rescale(owned, total)
        metrics.OWNED_PARTITIONS.set(owned)
        for bot in self.bots.values():
            metrics.BUDGET_SHARE.labels(bot.id).set(share)
        self._paused = False
        log.info("assigned %d of %d partitions of %s: this worker sends %.0f%% of each bot's budget",
                 owned, total, self.replies_name, share * 100)

    async def _process(self, work: Work) -> None:
        if not self.generation.is_current(work.generation):
            return
        try:
            if work.source == "replies":
                await self._process_reply(work)
            else:
                await self._process_retry(work)
            self._maybe_sweep(work)
        except Abandoned:
            pass
        except (KafkaError, ProducerSendError) as exc:
            # A write the broker refused: what this event did is not durable, so nothing of this
            # generation may be acknowledged. Stop; the restarted worker redoes it from the last commit.
            log.exception("broker write failed; giving everything back and stopping the worker",
                          extra={"chat_key": _chat_of(work)})
            self._give_back_all("broker error")
            await self.app.crash(exc)
        except Exception as exc:  # noqa: BLE001 - our own bug: keep the reply where people will see it
            log.exception("reply could not be handled; dead-lettering it",
                          extra={"reply_id": (work.reply or {}).get("reply_id"), "chat_key": _chat_of(work)})
            await self._dead_letter_after_bug(work, exc)

    # -- new replies ----------------------------------------------------------------------------------
    async def _process_reply(self, work: Work) -> None:
        reply = await self._decoded(work)
        if reply is None:
            return
        chat = str(reply["chat_key"])
        replayed = HEADER_REPLAY_OF in work.headers
        async with self.locks.hold(chat):
            self._bind(work)
            if reply["reply_id"] in self._coalesced:  # went out inside an earlier reply's message
                self._coalesced.discard(reply["reply_id"])
                return
            if replayed and self.ledger.forget_failure(reply["reply_id"]):
                log.info("replaying a dead-lettered reply", extra=log_fields(reply))
            admission = self.hold.admit(chat, reply, replayed=replayed)
            if admission is Admission.SEND:
                verdict = await self.deliverer.deliver(reply, generation=work.generation, ledger=self.ledger,
                                                       followers=lambda: self._queued_followers(work, chat))
                await self._settle(work, reply, verdict, _origin(work))
                if isinstance(verdict, Sent):
                    self._coalesced.update(r["reply_id"] for r in verdict.group[1:])
            elif admission is Admission.HOLD:
                metrics.HELD.labels(reply["platform"], reply["bot_id"]).inc()
                log.debug("reply held behind its chat's reply in the retry chain", extra=log_fields(reply))
                if self.hold.state(chat).blocker is None:  # leftovers of a crash mid-release
                    await self._drain(work, chat)
            else:
                log.info("copy of a reply already %s; skipped",
                         "in the retry chain" if admission is Admission.IN_CHAIN else "held", extra=log_fields(reply))

    def _queued_followers(self, work: Work, chat: str) -> list[dict[str, Any]]:
        """The chat's replies queued behind `work` in this agent, decoded, up to the first that may
        not be merged (undecodable, a replay, from an older generation)."""
        out: list[dict[str, Any]] = []
        for queued in self.schedulers["replies"].waiting(_chat_of(work))[:MAX_GROUP]:
            if queued.generation != work.generation:
                break
            if queued.reply is None:
                try:
                    queued.reply = self.codec.decode("reply", queued.event.value)
                except DecodeError:
                    break
                queued.headers = _headers(queued.message.headers)
            if HEADER_REPLAY_OF in queued.headers or queued.reply["chat_key"] != chat \
                    or queued.reply["reply_id"] in self._coalesced:
                break
            out.append(queued.reply)
        return out

    # -- the retry chain --------------------------------------------------------------------------------
    async def _process_retry(self, work: Work) -> None:
        reply = await self._decoded(work)
        if reply is None:
            await self._lost_hop(work)
            return
        chat = str(reply["chat_key"])
        delay_s = (int(reply.get("not_before_ms") or 0) - self.deliverer.now_ms()) / 1000
        if delay_s > 0:  # inside this chat's task: other chats and partitions are not held up
            await self.generation.sleep(delay_s, work.generation)
        async with self.locks.hold(chat):
            self._bind(work)
            if not self.hold.is_live(chat, reply):
                metrics.STALE_RETRIES.inc()
                log.debug("retry record is not its chat's live hop; dropped", extra=log_fields(reply))
                if self.hold.state(chat).blocker is None:
                    await self._drain(work, chat)
                return
            verdict = await self.deliverer.deliver(reply, generation=work.generation, ledger=self.ledger,
                                                   followers=lambda: [dict(r) for r in self.hold.peek(chat, MAX_GROUP)])
            resolved = await self._settle(work, reply, verdict, self._retry_origin(work))
            if resolved:
                self.hold.unblock(chat)
                if isinstance(verdict, Sent) and len(verdict.group) > 1:
                    self.hold.release(chat, len(verdict.group) - 1)
                await self._drain(work, chat)

    async def _lost_hop(self, work: Work) -> None:
        """An undecodable retry record (now in quarantine, with its origin) that is exactly its chat's
        live hop: the reply can no longer be read, so it is recorded as dead-lettered (the quarantine
        record holds its bytes) and the chat's held replies go on instead of waiting for it forever."""
        msg, key = work.message, work.event.key
        level = self.retry_level_of.get(msg.topic)
        if level is None or not isinstance(key, bytes) or key.count(b":") < 2:
            return
        chat = key.decode(errors="replace")
        async with self.locks.hold(chat):
            self._bind(work)
            blocker = self.hold.lost_hop(chat, level, msg.partition, msg.offset)
            if blocker is None:
                return  # not the live hop: quarantined, and the chat still waits for the real one
            platform, bot_id, _ = chat.split(":", 2)
            lost = {"reply_id": blocker.reply_id, "chat_key": chat, "platform": platform, "bot_id": bot_id,
                    "correlation_id": work.headers.get(CORRELATION_HEADER, b"").decode(errors="replace")}
            reason = f"retry record undecodable; quarantined from {_origin(work)}"
            now_ms = self.deliverer.now_ms()
            self.ledger.record(blocker.reply_id, "dead_lettered", now_ms)
            await self._result(lost, "dead_lettered", blocker.attempt, now_ms, error_code="undecodable", error=reason)
            log.error("a chat's reply in the retry chain could not be read; recorded as dead-lettered",
                      extra={"chat_key": chat, "reply_id": blocker.reply_id, "correlation_id": lost["correlation_id"]})
            self.hold.unblock(chat)
            await self._drain(work, chat)

    async def _drain(self, work: Work, chat: str) -> None:
        """Release the chat's held replies in order, until it is empty or one of them is parked."""
        origin = _origin(work)
        while True:
            self.generation.check(work.generation)
            st = self.hold.state(chat)
            if st.blocker is not None or st.held == 0:
                return
            reply = self.hold.head(chat)
            if reply is None:
                continue
            verdict = await self.deliverer.deliver(
                reply, generation=work.generation, ledger=self.ledger,
                followers=lambda: [dict(r) for r in self.hold.peek(chat, MAX_GROUP + 1)[1:]])
            await self._settle(work, reply, verdict, origin)
            if isinstance(verdict, Park):
                return
            self.hold.release(chat, len(verdict.group) if isinstance(verdict, Sent) else 1)

    # -- settling a verdict ---------------------------------------------------------------------------------
    async def _settle(self, work: Work, reply: Mapping[str, Any], verdict: Verdict, origin: str | None) -> bool:
        """Record what happened to `reply`; False when it went to the retry chain (not settled yet)."""
        now_ms = self.deliverer.now_ms()
        labels = (reply["platform"], reply["bot_id"])
        if isinstance(verdict, Sent):
            for r in verdict.group:
                self.ledger.record(r["reply_id"], DELIVERED, now_ms, verdict.message_id)
                await self._result(r, "delivered", int(r.get("attempt") or 0) + 1, now_ms,
                                   message_id=verdict.message_id, http_status=verdict.http_status)
                received = int(r.get("update_received_at_ms") or 0)
                if received:
                    metrics.END_TO_END_SECONDS.labels(*labels).observe(max(0, now_ms - received) / 1000)
                log.info("reply delivered", extra=log_fields(r, status=verdict.http_status))
            if len(verdict.group) > 1:
                metrics.COALESCED.labels(*labels).inc(len(verdict.group) - 1)
            return True
        if isinstance(verdict, Duplicate):
            metrics.LEDGER_SKIPS.labels(*labels).inc()
            log.info("reply already %s; copy skipped", verdict.entry.status, extra=log_fields(reply))
            await self._result(reply, "skipped_duplicate", 0, now_ms, message_id=verdict.entry.message_id)
            return True
        if isinstance(verdict, Skipped):
            self.ledger.record(reply["reply_id"], "failed_permanent", now_ms)
            await self._result(reply, "failed_permanent", 0, now_ms, error_code="unsupported", error=verdict.reason)
            return True
        if isinstance(verdict, DeadLetter):
            record, headers = dead_letter(verdict.reply, verdict.reason, verdict.outcome, at_ms=now_ms, origin=origin)
            value = self.codec.encode("reply", record, topic=self.dlq_name)
            fut = await self.dlq_topic.send(key=str(reply["chat_key"]).encode(), value=value, headers=headers)
            await fut  # durable before the failure is recorded as the reply's fate
            self.ledger.record(reply["reply_id"], verdict.outcome, now_ms)
            metrics.DLQ_RECORDS.labels(*labels, verdict.outcome).inc()
            log.warning("reply dead-lettered: %s", verdict.reason,
                        extra=log_fields(record, reason=verdict.outcome, status=verdict.http_status))
            await self._result(record, verdict.outcome, int(record.get("attempt") or 0), now_ms,
                               http_status=verdict.http_status, error_code=verdict.error_code, error=verdict.reason)
            return True
        assert isinstance(verdict, Park)
        record = verdict.record
        headers = encode_retry_headers(RetryHeaders.from_reply(record, origin))
        if record.get("correlation_id"):
            headers.append((CORRELATION_HEADER, str(record["correlation_id"]).encode()))
        value = self.codec.encode("reply", record, topic=self.retry_names[verdict.level])
        fut = await self.retry_topics[verdict.level].send(key=str(reply["chat_key"]).encode(), value=value,
                                                          headers=headers)
        written = await fut  # durable before the chat is marked blocked by it (and where: its metadata)
        self.hold.block(str(reply["chat_key"]), record, verdict.level, _written_at(written))
        metrics.RETRY_RECORDS.labels(*labels, str(verdict.level)).inc()
        delay_s = max(0.0, (int(record["not_before_ms"]) - now_ms) / 1000)
        log.info("reply to retry level %d in %.1fs: %s", verdict.level, delay_s, verdict.reason,
                 extra=log_fields(record, delay_s=round(delay_s, 3), reason=verdict.reason))
        return False

    async def _result(self, reply: Mapping[str, Any], outcome: FinalOutcome, attempts: int, at_ms: int,
                      **fields: Any) -> None:
        result = delivery_result(reply, outcome, at_ms=at_ms, attempts=attempts, **fields)
        metrics.DELIVERIES.labels(reply["platform"], reply["bot_id"], outcome).inc()
        # Not awaited one by one: Faust flushes the producer before it commits the offsets.
        await self.deliveries_topic.send(key=str(reply["chat_key"]).encode(),
                                         value=self.codec.encode("delivery_result", result))

    async def _dead_letter_after_bug(self, work: Work, exc: Exception) -> None:
        reply = work.reply
        if reply is None:
            return
        try:
            async with self.locks.hold(str(reply["chat_key"])):
                self._bind(work)
                verdict = DeadLetter(dict(reply), f"internal error: {type(exc).__name__}: {exc}", "dead_lettered")
                await self._settle(work, reply, verdict, _origin(work))
                if work.source == "retry" and self.hold.is_live(str(reply["chat_key"]), reply):
                    self.hold.unblock(str(reply["chat_key"]))
        except Exception:  # noqa: BLE001
            log.exception("could not dead-letter the reply either", extra=log_fields(reply))

    # -- helpers -----------------------------------------------------------------------------------------------
    async def _decoded(self, work: Work) -> dict[str, Any] | None:
        msg = work.message
        work.headers = _headers(msg.headers)
        if work.reply is not None:
            return work.reply
        try:
            work.reply = self.codec.decode("reply", work.event.value)
        except DecodeError as exc:
            exc.with_origin(msg.topic, msg.partition, msg.offset, work.event.key)
            metrics.QUARANTINED.labels(msg.topic).inc()
            log.warning("undecodable record quarantined: %s", exc.reason,
                        extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset})
            record = exc.to_quarantine_record("sinks", int(time.time() * 1000))
            fut = await self.quarantine_topic.send(key=None, value=self.codec.encode("quarantine", record))
            await fut
            return None
        return work.reply

    def _retry_origin(self, work: Work) -> str:
        try:
            origin = decode_retry_headers(work.headers).origin
        except InvalidRetryHeaders as exc:  # the value is authoritative; headers are for people
            log.warning("unreadable retry headers: %s", exc, extra={"topic": work.message.topic})
            origin = None
        return origin or _origin(work)

    @staticmethod
    def _bind(work: Work) -> None:
        _current_event.set(weakref.ref(work.event))  # table writes go to this event's partition

    def _maybe_sweep(self, work: Work) -> None:
        """Delete ledger entries past the window in which a copy of their reply can still arrive."""
        partition = work.message.partition
        now = time.monotonic()
        if now - self._sweep_at.get(partition, 0.0) < SWEEP_EVERY_S:
            return
        self._sweep_at[partition] = now
        self._bind(work)
        db = self.ledger_table.data._db_for_partition(partition)  # type: ignore[attr-defined]
        cursor = self._sweep_cursor.get(partition)
        items = db.items(from_key=cursor) if cursor else db.items()
        cutoff = self.deliverer.now_ms() - LEDGER_KEEP_MS
        deleted, last = self.ledger.sweep(items, cutoff, SWEEP_BATCH)
        self._sweep_cursor[partition] = last  # None at the end: start over next time
        if deleted:
            log.info("ledger: %d entries past the window deleted", deleted, extra={"partition": partition})


def _raw_topic(app: faust.App, name: str) -> Any:
    """Bytes in, bytes out: records are decoded by our codec, so a bad one reaches quarantine."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")



def _chat_of(work: Work) -> str:
    key = work.event.key
    return key.decode(errors="replace") if isinstance(key, bytes) else f"partition-{work.message.partition}"


def _position_of(work: Work) -> tuple[Hashable, int]:
    # The generation is part of the lane: an abandoned event completing late must never acknowledge
    # the same offset taken again in a later generation.
    msg = work.message
    return (work.generation, msg.topic, msg.partition), msg.offset


def _origin(work: Work) -> str:
    msg = work.message
    return origin_of(msg.topic, msg.partition, msg.offset)


def _written_at(metadata: Any) -> tuple[int, int] | None:
    """(partition, offset) from a send's RecordMetadata; None when the client did not say."""
    partition, offset = getattr(metadata, "partition", None), getattr(metadata, "offset", None)
    return (partition, offset) if isinstance(partition, int) and isinstance(offset, int) and offset >= 0 else None


def _headers(raw: Any) -> dict[str, bytes]:
    if not raw:
        return {}
    items = raw.items() if isinstance(raw, dict) else raw
    return {k.lower(): v for k, v in items if isinstance(k, str) and v is not None}
