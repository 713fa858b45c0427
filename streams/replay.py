"""Replay: rebuild the conversations table from the `messages` log, and the handoff release command.

The table is the fold of the events on `messages` (botstream.streams.conversation). `replay` folds the topic from
a starting point and writes each chat's state to the table's changelog topic (same partition as the
chat), which is where Faust restores tables from — run it while the streams workers are stopped.
`--from beginning` rebuilds from scratch; an offset or a time folds the events from there on only.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from botstream.core.codec import codec_for
from botstream.core.settings import Settings
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.streams.conversation import ConversationState, apply

PRODUCER_DEFAULTS = {"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random"}


def conversations_changelog(settings: Settings) -> str:
    return f"{settings.topic_prefix}-streams-conversations-changelog"


def _start_offsets(consumer: Consumer, topic: str, start: str) -> list[TopicPartition]:
    md = consumer.list_topics(topic, timeout=15).topics[topic]
    parts = sorted(md.partitions)
    if start == "beginning":
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
    if start.isdigit() and len(start) < 12:  # an offset, per partition
        return [TopicPartition(topic, p, int(start)) for p in parts]
    ms = int(start) if start.isdigit() else int(datetime.fromisoformat(start).timestamp() * 1000)
    return consumer.offsets_for_times([TopicPartition(topic, p, ms) for p in parts], timeout=15)


def fold_messages(settings: Settings, bootstrap: str, start: str = "beginning",
                  codec: Codec | None = None) -> tuple[dict[str, ConversationState], dict[str, int], int]:
    """(states by chat, partition by chat, events folded), reading `messages` up to its current end."""
    codec = codec or codec_for(settings)
    topic = settings.topic("messages")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"replay-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        assignment = _start_offsets(consumer, topic, start)
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=15)[1] for tp in assignment}
        # Nothing to read where the topic is empty, or the start lies past the end (time after the last event).
        live = {tp.partition for tp in assignment
                if ends[tp.partition] > 0 and (tp.offset == OFFSET_BEGINNING or 0 <= tp.offset < ends[tp.partition])}
        consumer.assign([tp for tp in assignment if tp.partition in live])
        states: dict[str, ConversationState] = {}
        partition_of: dict[str, int] = {}
        folded = 0
        done: set[int] = set()
        deadline = time.monotonic() + 600
        while done != live and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                error, partition, offset = msg.error(), msg.partition(), msg.offset()
                assert partition is not None  # set on every consumed message and partition event
                if error is not None:
                    if error.code() == -191:  # _PARTITION_EOF
                        done.add(partition)
                    continue
                if offset is not None and offset >= ends[partition] - 1:
                    done.add(partition)
                try:
                    event = codec.decode("conversation_event", msg.value() or b"")
                except DecodeError:
                    continue  # quarantined by whoever wrote it; not part of any chat's history
                chat = event["chat_key"]
                states[chat] = apply(states.get(chat), event)
                partition_of[chat] = partition
                folded += 1
        return states, partition_of, folded
    finally:
        consumer.close()


def replay(settings: Settings, bootstrap: str, start: str = "beginning", *, write: bool = True) -> dict[str, Any]:
    states, partition_of, folded = fold_messages(settings, bootstrap, start)
    written = 0
    if write and states:
        producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS})
        topic = conversations_changelog(settings)
        for chat, state in states.items():
            producer.produce(topic, key=chat.encode(), value=json.dumps(state).encode(),
                             partition=partition_of[chat])
            written += 1
            producer.poll(0)
        if producer.flush(60):
            raise RuntimeError("replay: not every state reached the changelog")
    return {"events": folded, "chats": len(states), "written": written, "changelog": conversations_changelog(settings)}


def release_handoff(settings: Settings, bootstrap: str, chat_key: str, *, by: str | None = None) -> None:
    """Give a chat back to the bot: a control update on `updates`, handled in the chat's order."""
    from botstream.streams.app import control_update

    platform, bot_id, chat_id = chat_key.split(":", 2)
    update = control_update(platform, bot_id, chat_id, "handoff_release", tag=uuid.uuid4().hex, by=by)
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS})
    producer.produce(settings.topic("updates"), key=chat_key.encode(), value=codec_for(settings).encode("update", update))
    if producer.flush(30):
        raise RuntimeError("handoff release was not acknowledged by the broker")
