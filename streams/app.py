"""The streams worker: Faust consumes `updates` and `deliveries`; `StatefulRuntime` does the rest.

    updates ──▶ decode (undecodable → quarantine) ──▶ UpdateProcessor ──▶ messages, replies, handoff
    deliveries ──▶ ReplyDelivered / ReplyFailed on messages, folded into the conversation state

Both inputs share one chat runner (a chat's updates and delivery outcomes are handled one at a time,
in arrival order) and one state store per partition (tables `dedupe`, `conversations`, and the local
indexes `dedupe-index` and `chats`), checkpointed together: outputs and changelogs flushed, offsets
committed, one `WriteBatch` (`botstream.core.runtime`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import orjson
from confluent_kafka import Consumer

from botstream.core.bots import BotRegistry
from botstream.core.codec import codec_for
from botstream.core.eager import start_task_eagerly
from botstream.core.faust_app import add_metrics_page, add_readiness_page, worker_app
from botstream.core.kafka import consumer_config, header_map, producer_config
from botstream.core.partitioning import partition_for
from botstream.core.producer import OutputProducer
from botstream.core.runtime import RuntimeOptions, StatefulRuntime, StateView
from botstream.core.settings import Settings
from botstream.core.state.store import StoreOptions, TableSpec
from botstream.core.tracing import span
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.schemas.headers import CORRELATION_ID, PLATFORM, TRACEPARENT
from botstream.schemas.records import parse_chat_key
from botstream.schemas.topics import changelog_topic, producer_max_message_bytes
from botstream.streams import metrics
from botstream.streams.control import CONTROL, HANDOFF_RELEASE, JOB_SEND, control_update
from botstream.streams.dedupe import expiry_index_key
from botstream.streams.handlers import Bot, JobContext, PlannedReply, load_bot
from botstream.streams.integrations import IntegrationPool
from botstream.streams.jobs import Schedule, chats_in
from botstream.streams.processor import (
    CHATS,
    CONVERSATIONS,
    DEDUPE,
    DEDUPE_INDEX,
    UpdateProcessor,
    chat_index_key,
    chat_key_of,
    load_handlers,
    stable_id,
)

log = logging.getLogger(__name__)

RECORD_OF = {"messages": "conversation_event", "replies": "reply", "handoff": "update"}
KEPT_HEADERS = (CORRELATION_ID, TRACEPARENT, PLATFORM)
SWEEP_EVERY_S = 30.0
SWEEP_BATCH = 1000


class StreamsWorker:
    def __init__(self, settings: Settings, bots: BotRegistry, *, codec: Codec | None = None,
                 handlers: dict[str, Bot] | None = None) -> None:
        self.settings = settings
        self.bots = bots
        self.codec = codec or codec_for(settings)
        app_id = f"{settings.topic_prefix}-streams"
        self.app = app = worker_app(settings, app_id, settings.streams_web_port, "streams", own_commits=True)
        topic = settings.topic
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.updates_name, self.deliveries_name = topic("updates"), topic("deliveries")
        self.updates_topic = app.topic(self.updates_name, **raw)
        self.deliveries_topic = app.topic(self.deliveries_name, **raw)
        self.out_names = {name: topic(name) for name in ("messages", "replies", "handoff")}
        self.quarantine_name = topic("quarantine")
        self.handlers = handlers if handlers is not None else load_handlers(bots, load_bot)
        self.integrations = IntegrationPool(bots.values())  # one client and one set of guards per process
        largest = producer_max_message_bytes(settings, ["messages", "replies", "handoff", "quarantine"])
        sized: dict[str, Any] = {"message.max.bytes": largest}  # the largest record these topics take
        self.outputs = OutputProducer(producer_config(settings, client_id=app_id, **sized))
        changelog = OutputProducer(producer_config(settings, client_id=f"{app_id}-changelog"), track_offsets=True)
        self.processor = UpdateProcessor(
            bots, self.handlers, emit=self._emit, dedupe_window_s=settings.dedupe_window_s,
            handler_timeout_s=settings.handler_timeout_s, integrations=self.integrations)
        tables = [TableSpec(DEDUPE, changelog_topic(settings, "streams", "dedupe")),
                  TableSpec(CONVERSATIONS, changelog_topic(settings, "streams", "conversations")),
                  TableSpec(DEDUPE_INDEX, None), TableSpec(CHATS, None)]
        self.runtime = StatefulRuntime(
            app, "streams", self._step, _chat_of, tables, settings.data_dir / "streams" / "state",
            self.outputs, changelog, lambda: Consumer(consumer_config(settings, app_id)),
            [self.updates_name, self.deliveries_name],
            options=RuntimeOptions(max_busy_chats=settings.chat_concurrency,
                                   checkpoint_interval_s=settings.checkpoint_interval_s),
            store_options=StoreOptions(settings.rocksdb_block_cache_bytes, settings.rocksdb_write_buffer_bytes),
            derive=derive_local_rows, on_checkpoint=self._on_checkpoint,
            on_restored=lambda _p, s: metrics.RESTORE_SECONDS.observe(s))
        self._last_sweep: dict[int, float] = {}

        async def updates_agent(stream: Any) -> None:
            await self.runtime.consume(stream)

        async def deliveries_agent(stream: Any) -> None:
            await self.runtime.consume(stream)

        app.agent(self.updates_topic, name=f"{settings.topic_prefix}-updates")(updates_agent)
        app.agent(self.deliveries_topic, name=f"{settings.topic_prefix}-deliveries")(deliveries_agent)
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        add_metrics_page(app)
        add_readiness_page(app, self.runtime.ready)
        self._register_jobs()

    # -- one event ----------------------------------------------------------------------------------
    async def _step(self, event: Any, view: StateView | None, generation: int) -> None:
        assert view is not None  # both inputs are stateful
        msg = event.message
        if msg.topic == self.updates_name:
            await self._on_update(event, view)
        else:
            await self._on_delivery_record(event, view)

    async def _on_update(self, event: Any, view: StateView) -> None:
        msg = event.message
        try:
            update = await self._decode("update", msg.value)
        except DecodeError as exc:
            self._quarantine(exc.with_origin(msg.topic, msg.partition, msg.offset, msg.key))
            return
        headers = _kept_headers(msg.headers)
        control = (update.get("platform_meta") or {}).get(CONTROL)
        try:
            if control:
                self._control(update, control, headers, msg.offset, view)
            elif update.get("traceparent"):
                with span("streams.update", update.get("traceparent"), chat_key=_chat_of(event),
                          correlation_id=update.get("correlation_id")):
                    await self.processor.process(update, view, msg.partition, msg.offset, headers)
            else:
                await self.processor.process(update, view, msg.partition, msg.offset, headers)
        except Exception as exc:  # noqa: BLE001 - our own bug: keep the record where people will see it
            log.exception("update could not be processed; quarantined",
                          extra={"correlation_id": update.get("correlation_id"), "chat_key": _chat_of(event)})
            failed = DecodeError(f"processing failed: {type(exc).__name__}: {exc}", msg.value)
            self._quarantine(failed.with_origin(msg.topic, msg.partition, msg.offset, msg.key))
        self._maybe_sweep(msg.partition, view)

    async def _on_delivery_record(self, event: Any, view: StateView) -> None:
        msg = event.message
        try:
            result = await self._decode("delivery_result", msg.value)
        except DecodeError as exc:
            self._quarantine(exc.with_origin(msg.topic, msg.partition, msg.offset, msg.key))
            return
        try:
            self._on_delivery(result, _kept_headers(msg.headers), view)
        except Exception:  # noqa: BLE001 - never let one record stop the agent
            log.exception("delivery result not folded", extra={"reply_id": result.get("reply_id")})

    def _on_delivery(self, result: Mapping[str, Any], headers: list[tuple[str, bytes]], view: StateView) -> None:
        outcome = result["outcome"]
        if outcome == "skipped_duplicate":
            return
        if outcome == "delivered":
            payload = {"type": "ReplyDelivered", "reply_id": result["reply_id"],
                       "platform_message_id": result.get("platform_message_id"), "attempts": result["attempts"]}
        else:
            payload = {"type": "ReplyFailed", "reply_id": result["reply_id"], "outcome": outcome,
                       "reason": result.get("error") or outcome}
        event = {"event_id": stable_id("delivery", result["reply_id"], outcome), "causation_id": result["reply_id"],
                 "correlation_id": result.get("correlation_id") or "", "chat_key": result["chat_key"],
                 "at_ms": result["at_ms"], "payload": payload}
        self._emit("messages", result["chat_key"], event, headers)
        self.processor.record_external(event, view)

    # -- control updates (handoff release, scheduled sends): ordered with the chat's updates -------------
    def _control(self, update: dict[str, Any], control: str, headers: list[tuple[str, bytes]], offset: int,
                 view: StateView) -> None:
        chat = chat_key_of(update)
        now = self.processor.now_ms()
        base = {"event_id": stable_id("control", update["update_id"]), "causation_id": update["update_id"],
                "correlation_id": update.get("correlation_id") or "", "chat_key": chat, "at_ms": now}
        if control == HANDOFF_RELEASE:
            event = {**base, "payload": {"type": "HandoffReleased", "by": update.get("user_id")}}
            self._emit("messages", chat, event, headers)
            self.processor.record_external(event, view)
        elif control == JOB_SEND and update.get("text"):
            synthetic = {**update, "kind": "other"}
            reply = self.processor.build_reply(synthetic, chat, 0, PlannedReply(text=update["text"]), offset)
            event = {**base, "payload": {"type": "ReplyPlanned", "reply_id": reply["reply_id"], "kind": "text",
                                         "text": reply["text"], "chat_seq": reply["chat_seq"]}}
            self._emit("messages", chat, event, headers)
            self._emit("replies", chat, reply, headers)
            self.processor.record_external(event, view)

    async def _decode(self, name: str, value: bytes) -> dict[str, Any]:
        """Decode, waiting out an unreachable schema registry (the record is fine: it must not be
        quarantined, nor skipped). A DecodeError that is not retriable is the record's fault."""
        delay = 0.5
        while True:
            try:
                return self.codec.decode(name, value)
            except DecodeError as exc:
                if not exc.retriable:
                    raise
                log.warning("schema registry unavailable (%s); retrying in %.1fs", exc.reason, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- output ----------------------------------------------------------------------------------------
    def _emit(self, stream: str, key: str, record: Mapping[str, Any], headers: list[tuple[str, bytes]]) -> None:
        """Hand a record to the producer, in call order; acknowledged before the input is committed."""
        topic = self.out_names[stream]
        self.outputs.produce(topic, self.codec.encode(RECORD_OF[stream], record, topic=topic), key.encode(),
                             headers=headers)

    def _quarantine(self, exc: DecodeError) -> None:
        metrics.QUARANTINED.labels("streams", exc.topic or "").inc()
        log.warning("undecodable record quarantined: %s", exc.reason,
                    extra={"topic": exc.topic, "partition": exc.partition, "offset": exc.offset})
        record = exc.to_quarantine_record("streams", int(time.time() * 1000))
        self.outputs.produce(self.quarantine_name, self.codec.encode("quarantine", record, topic=self.quarantine_name))

    # -- housekeeping ------------------------------------------------------------------------------------
    def _maybe_sweep(self, partition: int, view: StateView) -> None:
        """Expire dedupe keys past the window, a batch at a time, as writes of the current event."""
        now = time.monotonic()
        if now - self._last_sweep.get(partition, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[partition] = now
        part = self.runtime.partitions.get(partition)
        if part is None:
            return
        self.processor.sweep_expired(list(part.store.scan(DEDUPE_INDEX, limit=SWEEP_BATCH)), view)

    def _on_checkpoint(self, seconds: float) -> None:
        metrics.CHECKPOINT_SECONDS.observe(seconds)
        metrics.IN_FLIGHT.set(self.runtime.in_flight)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        metrics.OWNED_PARTITIONS.set(sum(1 for tp in assigned if tp.topic == self.updates_name))

    async def _on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        await self.runtime.stop()
        self.processor.summary.close()
        await self.integrations.aclose()

    # -- scheduled jobs ------------------------------------------------------------------------------------
    def _register_jobs(self) -> None:
        """Every worker runs every job over the chats of the partitions it holds (together: all chats,
        each once); a send to a chat held elsewhere is left to that chat's worker."""
        for bot_id, bot in self.handlers.items():
            for job in bot.jobs:
                self.app.task(self._job_loop(bot_id, job, Schedule.of(job)))

    def _job_loop(self, bot_id: str, job: Any, schedule: Schedule) -> Any:
        async def loop() -> None:
            while not self.app.should_stop:
                await self.app.sleep(schedule.delay(time.time()))
                if not self.app.should_stop:
                    await self.run_job(bot_id, job)
        loop.__name__ = f"job_{bot_id}_{job.name}"
        return loop

    async def run_job(self, bot_id: str, job: Any) -> int:
        """Run one job now over this worker's chats; returns the messages it sent."""
        deadline = time.monotonic() + self.settings.handler_timeout_s
        ctx = JobContext(bot=self.bots.get(bot_id), chats=lambda where=None: self.local_chats(bot_id, where),
                         integrations=self.integrations.bind(bot_id, deadline=deadline))
        try:
            done, _, task = start_task_eagerly(job.fn(ctx))
            if not done:
                await asyncio.wait_for(cast(asyncio.Task[None], task), max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001
            log.exception("scheduled job %s of %s failed", job.name, bot_id)
            return 0
        held, partitions = self._held_partitions()
        sent = 0
        for chat, text in ctx.sends:
            if partition_for(chat.encode(), partitions) not in held:
                log.debug("job send to a chat held by another worker left to it", extra={"chat_key": chat})
                continue
            self.send_control(chat, JOB_SEND, text=text, tag=f"{job.name}:{int(time.time())}")
            sent += 1
        if sent:
            await asyncio.to_thread(self.outputs.flush)
        return sent

    def _held_partitions(self) -> tuple[set[int], int]:
        """The partitions of `updates` this worker holds, and how many the topic has."""
        held = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.updates_name}
        return held, self.app.consumer.topic_partitions(self.updates_name) or self.settings.partitions

    def local_chats(self, bot_id: str, where: Callable[[dict[str, Any]], Any] | None = None) -> list[str]:
        """Chats of `bot_id` in the partitions this worker holds (see `botstream.streams.jobs`)."""
        stores = [p.store for p in list(self.runtime.partitions.values()) if p.ready.done()]
        return chats_in(stores, bot_id, where)

    def send_control(self, chat: str, control: str, *, text: str | None = None, tag: str = "") -> None:
        platform, bot_id, chat_id = parse_chat_key(chat)
        update = control_update(platform, bot_id, chat_id, control, text=text, tag=tag)
        self.outputs.produce(self.updates_name, self.codec.encode("update", update, topic=self.updates_name),
                             chat.encode())


def derive_local_rows(table: str, key: bytes, raw: bytes) -> Iterable[tuple[str, bytes, bytes | None]]:
    """The local index rows a restored changelog record implies (`PartitionStore` restore hook)."""
    if table == DEDUPE:
        try:
            first_seen = int(orjson.loads(raw)["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ()
        return ((DEDUPE_INDEX, expiry_index_key(first_seen, key), b"0"),)
    if table == CONVERSATIONS:
        try:
            return ((CHATS, chat_index_key(key.decode()), b"0"),)
        except ValueError:
            return ()
    return ()


def _chat_of(event: Any) -> str:
    key = event.message.key
    return key.decode(errors="replace") if isinstance(key, bytes) else f"partition-{event.message.partition}"


def _kept_headers(raw: Any) -> list[tuple[str, bytes]]:
    headers = header_map(raw)
    return [(name, headers[name]) for name in KEPT_HEADERS if name in headers]


__all__ = ["StreamsWorker", "control_update", "derive_local_rows"]
