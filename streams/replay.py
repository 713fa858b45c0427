"""Replay: rebuild the conversations table from the `messages` log, and the handoff release command.

The table is the fold of the events on `messages` (botstream.streams.conversation). `replay` folds the topic from
a starting point and writes each chat's state to the table's changelog topic (same partition as the
chat), which is where Faust restores tables from — run it while the streams workers are stopped.
`--from beginning` rebuilds from scratch; an offset or a time folds the events from there on only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from botstream.core.codec import codec_for
from botstream.core.kafka import consumer_config, producer_config, read_to_end, topic_partitions
from botstream.core.settings import Settings
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.schemas.records import parse_chat_key
from botstream.schemas.topics import changelog_topic
from botstream.streams.conversation import ConversationState, apply

READ_TIMEOUT_S = 600.0  # folding a year of `messages` takes a while; a partial fold is never written


def conversations_changelog(settings: Settings) -> str:
    return changelog_topic(settings, "streams", "conversations")


def _start_offsets(consumer: Consumer, topic: str, start: str) -> list[TopicPartition]:
    """Where each partition's fold starts; partitions with nothing to fold (a time after their last
    event) are left out."""
    parts = topic_partitions(consumer, topic)
    if start == "beginning":
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
    if start.isdigit() and len(start) < 12:  # an offset, per partition
        return [TopicPartition(topic, p, int(start)) for p in parts]
    ms = int(start) if start.isdigit() else int(datetime.fromisoformat(start).timestamp() * 1000)
    found = consumer.offsets_for_times([TopicPartition(topic, p, ms) for p in parts], timeout=15)
    return [tp for tp in found if tp.offset >= 0]  # -1: no event at or after that time


def fold(messages: Iterable[Message], codec: Codec) -> tuple[dict[str, ConversationState], dict[str, int], int]:
    """(states by chat, partition by chat, events folded) of `messages` records, in their order.

    A record that will never decode is no part of any chat's history and is passed over; a retriable
    decode error (the schema registry is down) stops the fold, since a fold without the event is wrong.
    """
    states: dict[str, ConversationState] = {}
    partition_of: dict[str, int] = {}
    folded = 0
    for msg in messages:
        partition = msg.partition()
        assert partition is not None  # set on every consumed message
        try:
            event = codec.decode("conversation_event", msg.value() or b"")
        except DecodeError as exc:
            if exc.retriable:
                raise
            continue
        chat = event["chat_key"]
        states[chat] = apply(states.get(chat), event)
        partition_of[chat] = partition
        folded += 1
    return states, partition_of, folded


def fold_messages(settings: Settings, bootstrap: str, start: str = "beginning",
                  codec: Codec | None = None) -> tuple[dict[str, ConversationState], dict[str, int], int]:
    """(states by chat, partition by chat, events folded), reading `messages` up to its current end."""
    codec = codec or codec_for(settings)
    topic = settings.topic("messages")
    consumer = Consumer(consumer_config(settings, f"replay-{uuid.uuid4().hex[:8]}", bootstrap=bootstrap))
    try:
        return fold(read_to_end(consumer, _start_offsets(consumer, topic, start), timeout_s=READ_TIMEOUT_S), codec)
    finally:
        consumer.close()


def replay(settings: Settings, bootstrap: str, start: str = "beginning", *, write: bool = True) -> dict[str, Any]:
    states, partition_of, folded = fold_messages(settings, bootstrap, start)
    written = 0
    if write and states:
        producer = Producer(producer_config(settings, bootstrap=bootstrap, client_id="botstream-replay"))
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
    from botstream.streams.control import control_update

    platform, bot_id, chat_id = parse_chat_key(chat_key)
    update = control_update(platform, bot_id, chat_id, "handoff_release", tag=uuid.uuid4().hex, by=by)
    producer = Producer(producer_config(settings, bootstrap=bootstrap, client_id="botstream-replay"))
    producer.produce(settings.topic("updates"), key=chat_key.encode(), value=codec_for(settings).encode("update", update))
    if producer.flush(30):
        raise RuntimeError("handoff release was not acknowledged by the broker")
