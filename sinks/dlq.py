"""Working the dead-letter queue: list, show and replay `replies.dlq` records (confluent-kafka).

Replayed once. When a record is replayed, a *marker* goes to the DLQ topic itself: a record with a
null value, the chat key, and header `x-botstream-replayed: <partition>@<offset>` naming the record it
replayed. Reading the DLQ collects the markers first, so a replayed record is never replayed again,
whatever filters the next replay uses (a consumer group's committed offset could only say "everything
before offset N", which filters make untrue). Markers live in the same topic with the same retention,
so they expire after the records they mark. The marker is produced only once the re-enqueued reply
is acknowledged by the broker: a crash in between replays that record again, and the sink's ledger
stops a second delivery.

A replayed reply goes to `replies` with attempt and not-before reset and header
`x-botstream-replay-of`, so the sink forgets the dead-lettered fate in its ledger and delivers it in
its chat's order. The producer comes from `botstream.core.kafka` (murmur2 partitioning, like the
Faust workers), so the reply lands on its chat's partition. Header names: `botstream.schemas.headers`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from botstream.core.kafka import consumer_config, header_map, producer_config, read_to_end, topic_partitions
from botstream.core.settings import Settings
from botstream.schemas.codec import Codec
from botstream.schemas.errors import DecodeError
from botstream.schemas.headers import (
    CORRELATION_ID,
    DLQ_AT,
    DLQ_OUTCOME,
    DLQ_REASON,
    REPLAY_OF,
    REPLAYED,
    REPLAYED_AT,
    REPLAYED_TO,
    RETRY_ATTEMPT,
    RETRY_ORIGIN,
)

__all__ = ["DlqFilter", "DlqRecord", "ReplayReport", "parse_since", "read_dlq", "replay", "replay_reply"]

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DlqRecord:
    partition: int
    offset: int
    timestamp_ms: int
    key: str
    reply: dict[str, Any] | None  # None: undecodable
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    error: str | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}@{self.offset}"

    @property
    def reason(self) -> str:
        return self.headers.get(DLQ_REASON) or (self.reply or {}).get("last_error") or ""

    @property
    def outcome(self) -> str:
        return self.headers.get(DLQ_OUTCOME, "")

    @property
    def at_ms(self) -> int:
        raw = self.headers.get(DLQ_AT)
        return int(raw) if raw and raw.isdigit() else self.timestamp_ms

    def summary(self) -> dict[str, Any]:
        reply = self.reply or {}
        return {"position": self.position, "at": _iso(self.at_ms), "reply_id": reply.get("reply_id"),
                "chat_key": reply.get("chat_key", self.key), "bot": reply.get("bot_id"),
                "attempts": int(self.headers.get(RETRY_ATTEMPT) or reply.get("attempt") or 0),
                "outcome": self.outcome, "reason": self.reason, "replayed": self.replayed,
                **({"error": self.error} if self.error else {})}

    def detail(self) -> dict[str, Any]:
        return {**self.summary(), "origin": self.headers.get(RETRY_ORIGIN), "headers": self.headers,
                "reply": self.reply}


@dataclass(frozen=True)
class DlqFilter:
    """Which records an operator means. `chat` matches a full chat key or just the chat id;
    `reason` is a case-insensitive substring of the reason."""

    bot: str | None = None
    chat: str | None = None
    reason: str | None = None
    since_ms: int | None = None
    reply_id: str | None = None

    def matches(self, record: DlqRecord) -> bool:
        reply = record.reply or {}
        if self.bot is not None and reply.get("bot_id") != self.bot:
            return False
        if self.chat is not None and self.chat not in (reply.get("chat_key"), reply.get("chat_id"), record.key):
            return False
        if self.reason is not None and self.reason.lower() not in record.reason.lower():
            return False
        if self.since_ms is not None and record.at_ms < self.since_ms:
            return False
        return self.reply_id is None or reply.get("reply_id") == self.reply_id


def parse_since(text: str, now_ms: int) -> int:
    """Unix ms from "90s", "15m", "2h", "7d" (ago), an ISO 8601 time, or unix ms / seconds."""
    text = text.strip()
    rel = _RELATIVE.match(text)
    if rel:
        return now_ms - int(float(rel.group(1)) * _UNIT_S[rel.group(2)] * 1000)
    if text.isdigit():
        value = int(text)
        return value if value > 10**11 else value * 1000
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a time (e.g. 2h, 30m, 2024-05-01T12:00, unix ms)") from None


def replay_reply(reply: Mapping[str, Any]) -> dict[str, Any]:
    """The reply as it goes back to `replies`: a fresh start in the retry chain, errors kept."""
    out = dict(reply)
    out["attempt"] = 0
    out["not_before_ms"] = 0
    return out


def collect(messages: Iterable[tuple[int, int, int, bytes | None, bytes | None, dict[str, str]]],
            codec: Codec) -> list[DlqRecord]:
    """DLQ records from raw (partition, offset, timestamp, key, value, headers), markers applied."""
    replayed: set[str] = set()
    raw: list[tuple[int, int, int, bytes | None, bytes | None, dict[str, str]]] = []
    for item in messages:
        value, headers = item[4], item[5]
        if value is None:
            if REPLAYED in headers:
                replayed.add(headers[REPLAYED])
            continue
        raw.append(item)
    out: list[DlqRecord] = []
    for partition, offset, ts, key, value, headers in raw:
        assert value is not None
        reply: dict[str, Any] | None = None
        error = None
        try:
            reply = codec.decode("reply", value)
        except DecodeError as exc:
            error = f"undecodable: {exc.reason}"
        out.append(DlqRecord(partition, offset, ts, (key or b"").decode(errors="replace"), reply, headers,
                             f"{partition}@{offset}" in replayed, error))
    return out


def read_dlq(settings: Settings, bootstrap: str, codec: Codec, timeout_s: float = 30.0) -> list[DlqRecord]:
    """Every record of the DLQ topic, from the beginning up to its end at the time of the call."""
    topic = settings.topic("replies.dlq")
    return collect(_read_topic(settings, bootstrap, topic, timeout_s), codec)


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)  # positions
    skipped: list[str] = field(default_factory=list)  # undecodable or failed to produce
    errors: list[str] = field(default_factory=list)


def replay(settings: Settings, bootstrap: str, records: list[DlqRecord], codec: Codec, *, rate: float = 10.0,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> ReplayReport:
    """Re-enqueue `records` (not yet replayed) to `replies` at no more than `rate` per second."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    report = ReplayReport()
    todo = [r for r in records if not r.replayed]
    replies_topic = settings.topic("replies")
    dlq_topic = settings.topic("replies.dlq")
    producer = Producer(producer_config(settings, bootstrap=bootstrap, client_id="botstream-dlq"))
    chunk = max(1, min(int(rate), 100))
    next_at = clock()
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        delivered: dict[str, tuple[int, int]] = {}
        failed: dict[str, str] = {}
        for record in batch:
            if record.reply is None:
                report.skipped.append(record.position)
                continue
            wait = next_at - clock()
            if wait > 0:
                sleep(wait)
            next_at = max(next_at, clock()) + 1.0 / rate
            reply = replay_reply(record.reply)
            headers: list[tuple[str, str | bytes | None]] = [(REPLAY_OF, record.position.encode())]
            if reply.get("correlation_id"):
                headers.append((CORRELATION_ID, str(reply["correlation_id"]).encode()))
            producer.produce(replies_topic, key=str(reply["chat_key"]).encode(),
                             value=codec.encode("reply", reply, topic=replies_topic), headers=headers,
                             on_delivery=_report_into(record.position, delivered, failed))
            producer.poll(0)
        producer.flush(60)
        now_ms = int(time.time() * 1000)
        for record in batch:
            if record.position in failed:
                report.errors.append(f"{record.position}: {failed[record.position]}")
            elif record.position in delivered:
                partition, offset = delivered[record.position]
                producer.produce(dlq_topic, key=record.key.encode(), value=None, partition=record.partition,
                                 headers=[(REPLAYED, record.position.encode()),
                                          (REPLAYED_AT, str(now_ms).encode()),
                                          (REPLAYED_TO, f"{replies_topic}/{partition}@{offset}".encode())])
                report.replayed.append(record.position)
        if producer.flush(60):
            report.errors.append("some replay markers were not acknowledged; those records may be replayed again")
    return report


def _report_into(position: str, delivered: dict[str, tuple[int, int]],
                 failed: dict[str, str]) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed[position] = str(err)
        else:
            delivered[position] = (msg.partition() or 0, msg.offset() or 0)
    return on_delivery


def _read_topic(settings: Settings, bootstrap: str, topic: str,
                timeout_s: float) -> Iterator[tuple[int, int, int, bytes | None, bytes | None, dict[str, str]]]:
    consumer = Consumer(consumer_config(settings, f"botstream-dlq-{uuid.uuid4().hex[:8]}", bootstrap=bootstrap))
    try:
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING)
                  for p in topic_partitions(consumer, topic, timeout_s=timeout_s)]
        for msg in read_to_end(consumer, starts, timeout_s=timeout_s):
            headers = {name: value.decode(errors="replace") for name, value in header_map(msg.headers()).items()}
            yield (int(msg.partition() or 0), int(msg.offset() or 0), msg.timestamp()[1], _as_bytes(msg.key()),
                   _as_bytes(msg.value()), headers)
    finally:
        consumer.close()


def _as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")
