"""The streams worker: a Faust app (aiokafka driver, RocksDB tables via rocksdict) around UpdateProcessor.

Agents:
- `updates`: raw records → decode (undecodable → quarantine) → ChatScheduler (chats concurrent, each
  chat in order, offsets acknowledged in order) → UpdateProcessor → `messages`, `replies`, `handoff`.
- `deliveries`: delivery outcomes from the sinks → ReplyDelivered / ReplyFailed events on `messages`,
  folded into the conversation table.
Tables (all co-partitioned with the chat topics): `dedupe` and `dedupe-index` (changelogs
`compact,delete`, retention > window, keys deleted explicitly), `conversations` (compacted).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from typing import Any

import faust
from faust.streams import _current_event

from botstream.core.bots import BotRegistry
from botstream.core.codec import codec_for
from botstream.core.faust_app import add_metrics_page, faust_app, rocksdb_options
from botstream.core.partitioning import partition_for
from botstream.core.scheduler import ChatScheduler
from botstream.core.settings import Settings
from botstream.core.tracing import span
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.schemas.topics import changelog_configs
from botstream.streams import metrics
from botstream.streams.handlers import Bot, JobContext, PlannedReply, load_bot
from botstream.streams.integrations import IntegrationPool
from botstream.streams.processor import UpdateProcessor, chat_key_of, load_handlers, stable_id

log = logging.getLogger(__name__)

CONTROL = "botstream_control"  # platform_meta key of control updates (handoff release, job sends)
RECORD_OF = {"messages": "conversation_event", "replies": "reply", "handoff": "update"}
SWEEP_EVERY_S = 30.0


class StreamsWorker:
    def __init__(self, settings: Settings, bots: BotRegistry, *, codec: Codec | None = None,
                 handlers: dict[str, Bot] | None = None) -> None:
        self.settings = settings
        self.bots = bots
        self.codec = codec or codec_for(settings)
        self.app = app = faust_app(settings, f"{settings.topic_prefix}-streams", settings.streams_web_port, "streams")
        topic = settings.topic
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.updates_topic = app.topic(topic("updates"), **raw)
        self.deliveries_topic = app.topic(topic("deliveries"), **raw)
        self.out = {name: app.topic(topic(name), **raw) for name in ("messages", "replies", "handoff")}
        self.quarantine_topic = app.topic(topic("quarantine"), **raw)
        dedupe_cfg = changelog_configs(settings, "streams", "dedupe")
        opts = rocksdb_options(settings)
        # faust derives a table's changelog (de)serializers from key_type/value_type — bytes means raw,
        # anything else json — and not from a Schema; a mismatch stalls changelog recovery for good.
        self.dedupe = app.Table("dedupe", partitions=settings.partitions, key_type=bytes,
                                extra_topic_configs=dedupe_cfg, options=dict(opts))
        self.dedupe_index = app.Table("dedupe-index", partitions=settings.partitions, key_type=bytes,
                                      value_type=bytes, extra_topic_configs=changelog_configs(
                                          settings, "streams", "dedupe-index"), options=dict(opts))
        self.conversations = app.Table("conversations", partitions=settings.partitions, key_type=bytes,
                                       extra_topic_configs=changelog_configs(settings, "streams", "conversations"),
                                       options=dict(opts))
        self.handlers = handlers if handlers is not None else load_handlers(bots, load_bot)
        self.integrations = IntegrationPool(bots.values())  # one client and one set of guards per process
        self.processor = UpdateProcessor(
            bots, self.handlers, dedupe=self.dedupe, dedupe_index=self.dedupe_index,
            conversations=self.conversations, emit=self._emit, dedupe_window_s=settings.dedupe_window_s,
            handler_timeout_s=settings.handler_timeout_s, integrations=self.integrations)
        self.scheduler: ChatScheduler[Any] = ChatScheduler(
            self._process_event, self._ack, chat_of=self._chat_of, position_of=self._position_of,
            max_chats=settings.chat_concurrency, max_in_flight=max(100, settings.chat_concurrency * 20))
        self._last_sweep: dict[int, float] = {}
        app.agent(self.updates_topic, name=f"{settings.topic_prefix}-updates")(self._updates_agent)
        app.agent(self.deliveries_topic, name=f"{settings.topic_prefix}-deliveries")(self._deliveries_agent)
        # faust calls these as (sender, *args, signal=..., **kwargs); its stubs want `signal` named
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        add_metrics_page(app)
        self._register_jobs()

    # -- agents --------------------------------------------------------------------------------------
    async def _updates_agent(self, stream: faust.StreamT[bytes]) -> None:
        try:
            async for event in stream.noack().events():  # type: ignore[attr-defined]  # Stream, not StreamT
                await self.scheduler.submit(event)
                metrics.IN_FLIGHT.set(self.scheduler.in_flight)
        except asyncio.CancelledError:
            # Stopping: let what was taken finish, so its offsets can be committed.
            await self.scheduler.drain(timeout=10)
            raise

    async def _process_event(self, event: Any) -> None:
        _current_event.set(weakref.ref(event))  # tables write to this event's partition
        msg = event.message
        try:
            update = self.codec.decode("update", event.value)
        except DecodeError as exc:
            await self._quarantine(exc.with_origin(msg.topic, msg.partition, msg.offset, event.key), "streams")
            return
        headers = _headers(msg.headers)
        control = (update.get("platform_meta") or {}).get(CONTROL)
        try:
            if control:
                await self._control(update, control, headers, msg.offset)
            else:
                with span("streams.update", update.get("traceparent"), chat_key=self._chat_of(event),
                          correlation_id=update.get("correlation_id")):
                    await self.processor.process(update, msg.partition, msg.offset, headers)
        except Exception as exc:  # noqa: BLE001 - our own bug: keep the record where people will see it
            log.exception("update could not be processed; quarantined",
                          extra={"correlation_id": update.get("correlation_id"), "chat_key": self._chat_of(event)})
            failed = DecodeError(f"processing failed: {type(exc).__name__}: {exc}", event.value)
            await self._quarantine(failed.with_origin(msg.topic, msg.partition, msg.offset, event.key), "streams")
        self._maybe_sweep(msg.partition)

    def _ack(self, event: Any) -> None:
        event.ack()

    @staticmethod
    def _chat_of(event: Any) -> str:
        key = event.key
        return key.decode(errors="replace") if isinstance(key, bytes) else f"partition-{event.message.partition}"

    @staticmethod
    def _position_of(event: Any) -> tuple[int, int]:
        return event.message.partition, event.message.offset

    async def _deliveries_agent(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                result = self.codec.decode("delivery_result", event.value)
            except DecodeError as exc:
                await self._quarantine(exc.with_origin(msg.topic, msg.partition, msg.offset, event.key), "streams")
                continue
            try:
                await self._on_delivery(result, _headers(msg.headers))
            except Exception:  # noqa: BLE001 - never let one record stop the agent
                log.exception("delivery result not folded", extra={"reply_id": result.get("reply_id")})

    async def _on_delivery(self, result: dict[str, Any], headers: dict[str, bytes]) -> None:
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
        await self._emit_durable("messages", result["chat_key"], event, headers)
        self.processor.record_external(event)

    # -- control updates (handoff release, scheduled sends): ordered with the chat's updates -------------
    async def _control(self, update: dict[str, Any], control: str, headers: dict[str, bytes], offset: int) -> None:
        chat = chat_key_of(update)
        now = self.processor.now_ms()
        base = {"event_id": stable_id("control", update["update_id"]), "causation_id": update["update_id"],
                "correlation_id": update.get("correlation_id") or "", "chat_key": chat, "at_ms": now}
        if control == "handoff_release":
            event = {**base, "payload": {"type": "HandoffReleased", "by": update.get("user_id")}}
            await self._emit_durable("messages", chat, event, headers)
            self.processor.record_external(event)
        elif control == "job_send" and update.get("text"):
            synthetic = {**update, "kind": "other"}
            reply = self.processor.build_reply(synthetic, chat, 0, PlannedReply(text=update["text"]), offset)
            event = {**base, "payload": {"type": "ReplyPlanned", "reply_id": reply["reply_id"], "kind": "text",
                                         "text": reply["text"], "chat_seq": reply["chat_seq"]}}
            acks = [await self._emit("messages", chat, event, headers), await self._emit("replies", chat, reply, headers)]
            await asyncio.gather(*acks)
            self.processor.record_external(event)

    # -- output ----------------------------------------------------------------------------------------
    async def _emit(self, stream: str, key: str, record: dict[str, Any], headers: dict[str, bytes]) -> Any:
        """Enqueue a record (in call order) and return the future of its acknowledgement."""
        value = self.codec.encode(RECORD_OF[stream], record)
        return await self.out[stream].send(key=key.encode(), value=value, headers=_out_headers(headers, record))

    async def _emit_durable(self, stream: str, key: str, record: dict[str, Any], headers: dict[str, bytes]) -> None:
        await (await self._emit(stream, key, record, headers))

    async def _quarantine(self, exc: DecodeError, stage: str) -> None:
        metrics.QUARANTINED.labels(stage, exc.topic or "").inc()
        log.warning("undecodable record quarantined: %s", exc.reason,
                    extra={"topic": exc.topic, "partition": exc.partition, "offset": exc.offset})
        record = exc.to_quarantine_record(stage, int(time.time() * 1000))
        fut = await self.quarantine_topic.send(key=None, value=self.codec.encode("quarantine", record))
        await fut

    # -- housekeeping ------------------------------------------------------------------------------------
    def _maybe_sweep(self, partition: int) -> None:
        now = time.monotonic()
        if now - self._last_sweep.get(partition, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[partition] = now
        db = self.dedupe_index.data._db_for_partition(partition)  # type: ignore[attr-defined]
        keys = list(itertools.islice(db.keys(), 1000))
        self.processor.sweep_expired(keys)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        updates = self.updates_topic.get_topic_name()
        metrics.OWNED_PARTITIONS.set(sum(1 for tp in assigned if tp.topic == updates))

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        # Finish what was taken before the partitions move, so its offsets are committed here.
        await self.scheduler.drain(timeout=15)

    async def _on_shutdown(self, sender: Any, **kwargs: Any) -> None:
        await self.integrations.aclose()

    def _register_jobs(self) -> None:
        """Every worker runs every job over the chats of the partitions it holds (together: all chats,
        each once); a send to a chat held elsewhere is left to that chat's worker."""
        for bot_id, bot in self.handlers.items():
            for job in bot.jobs:
                runner = self._job_runner(bot_id, job)
                if job.cron:
                    self.app.crontab(job.cron)(runner)
                elif job.seconds:
                    self.app.timer(job.seconds)(runner)

    def _job_runner(self, bot_id: str, job: Any) -> Any:
        async def run() -> None:
            ctx = JobContext(bot=self.bots.get(bot_id), chats=lambda: self._local_chats(bot_id))
            try:
                await asyncio.wait_for(job.fn(ctx), self.settings.handler_timeout_s)
            except Exception:  # noqa: BLE001
                log.exception("scheduled job %s of %s failed", job.name, bot_id)
                return
            held, partitions = self._held_partitions()
            for chat, text in ctx.sends:
                if partition_for(chat.encode(), partitions) not in held:
                    log.debug("job send to a chat held by another worker left to it", extra={"chat_key": chat})
                    continue
                await self.send_control(chat, "job_send", text=text, tag=f"{job.name}:{int(time.time())}")
        run.__name__ = f"job_{bot_id}_{job.name}"
        return run

    def _held_partitions(self) -> tuple[set[int], int]:
        """The partitions of `updates` this worker holds, and how many the topic has."""
        updates = self.updates_topic.get_topic_name()
        held = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == updates}
        return held, self.app.consumer.topic_partitions(updates) or self.settings.partitions

    def _local_chats(self, bot_id: str) -> list[str]:
        """Chats of this bot in the partitions this worker holds (every worker runs the job for its own)."""
        out = []
        for key, state in self.conversations.items():
            chat = key.decode()
            if chat.split(":", 2)[1] == bot_id and state.get("bot_state", {}).get("digest"):
                out.append(chat)
        return out

    async def send_control(self, chat: str, control: str, *, text: str | None = None, tag: str = "") -> None:
        platform, bot_id, chat_id = chat.split(":", 2)
        update = control_update(platform, bot_id, chat_id, control, text=text, tag=tag)
        fut = await self.updates_topic.send(key=chat.encode(), value=self.codec.encode("update", update))
        await fut


def control_update(platform: str, bot_id: str, chat_id: str, control: str, *, text: str | None = None,
                   tag: str = "", by: str | None = None) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "platform": platform, "bot_id": bot_id, "chat_id": chat_id, "chat_type": "unknown", "user_id": by,
        "update_id": f"control:{control}:{tag or now}", "kind": "other", "text": text, "attachments": [],
        "reply_to": None, "thread_id": None, "locale": None, "platform_ts_ms": None, "received_at_ms": now,
        "correlation_id": stable_id("control", control, tag, now)[:16], "from_bot": False,
        "platform_meta": {CONTROL: control}, "traceparent": None, "raw": b"",
    }


def _headers(raw: Any) -> dict[str, bytes]:
    if not raw:
        return {}
    items = raw.items() if isinstance(raw, dict) else raw
    return {k: v for k, v in items if k in ("correlation-id", "traceparent", "platform")}


def _out_headers(inbound: dict[str, bytes], record: dict[str, Any]) -> dict[str, bytes]:
    out = dict(inbound)
    corr = record.get("correlation_id")
    if corr:
        out["correlation-id"] = str(corr).encode()
    return out
