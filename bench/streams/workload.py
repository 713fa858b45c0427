"""The records the benchmark feeds the `updates` topic: Telegram text messages to the echo bot.

Built deterministically (seeded), Avro-encoded with the project codec, produced with the project's
producer settings (idempotent, acks=all, `murmur2_random` so a chat lands on the partition aiokafka
and the tables expect). Redeliveries are copies of an earlier update — same update id, so the dedupe
table must drop them — with a new correlation id and receive time, produced a little later, as a
platform retry would be.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from botstream.schemas.headers import CORRELATION_ID
from tests.pipeline import CODEC, chat_key, make_update, producer

BOT_ID = "echo"
PLATFORM = "telegram"
REDELIVERY_LAG = 2000  # a redelivery lands up to this many records after the original
# A Telegram update as the webhook delivers it; carried in `raw` like ingest does.
RAW = (
    b'{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Ada",'
    b'"username":"ada","language_code":"en"},"chat":{"id":%d,"first_name":"Ada","username":"ada",'
    b'"type":"private"},"date":1700000000,"text":"%s"}}'
)


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    update_id: str


@dataclass(frozen=True)
class Workload:
    updates: int          # unique updates
    chats: int            # distinct chats they are spread over (round robin)
    duplicate_share: float = 0.05
    seed: int = 7

    @property
    def redeliveries(self) -> int:
        return round(self.updates * self.duplicate_share)

    @property
    def records(self) -> int:
        return self.updates + self.redeliveries


def encode_update(chat: int, update_id: int, text: str) -> Record:
    chat_id = str(100_000_000 + chat)
    raw = RAW % (update_id, update_id % 1_000_000, chat, chat, text.encode())
    update = make_update(chat_id, text, bot_id=BOT_ID, platform=PLATFORM, update_id=str(update_id),
                         user_id=str(chat), raw=raw)
    return Record(chat_key(update).encode(), CODEC.encode("update", update),
                  [(CORRELATION_ID, update["correlation_id"].encode())], update["update_id"])


def build(workload: Workload, first_update_id: int = 500_000_000) -> list[Record]:
    """Originals in order, each redelivery inserted 1..REDELIVERY_LAG records after its original."""
    rng = random.Random(workload.seed)
    originals = [encode_update(i % workload.chats, first_update_id + i, f"hello {i}")
                 for i in range(workload.updates)]
    placed: list[tuple[float, Record]] = [(float(i), r) for i, r in enumerate(originals)]
    for i in rng.sample(range(workload.updates), workload.redeliveries):
        again = encode_update(i % workload.chats, first_update_id + i, f"hello {i}")  # new correlation id
        placed.append((i + rng.randint(1, REDELIVERY_LAG) + 0.5, again))
    placed.sort(key=lambda p: p[0])
    return [r for _, r in placed]


def produce_all(bootstrap: str, topic: str, records: list[Record]) -> float:
    """Produce everything, wait for every ack; returns the seconds it took."""
    p = producer(bootstrap)
    started = time.perf_counter()
    for r in records:
        _produce(p, topic, r, None)
    remaining = p.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} workload records not acknowledged")
    return time.perf_counter() - started


def paced(records: Iterator[Record], bootstrap: str, topic: str, rate: float, seconds: float) -> dict[str, int]:
    """Produce at `rate` records/s for `seconds`; returns update id -> the record timestamp (ms) it was given."""
    p = producer(bootstrap)
    sent: dict[str, int] = {}
    started = time.monotonic()
    done = 0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(elapsed * rate) - done
        for _ in range(due):
            r = next(records)
            now_ms = int(time.time() * 1000)
            _produce(p, topic, r, now_ms)
            sent[r.update_id] = now_ms
        done += due
        p.poll(0)
        time.sleep(0.002)
    if p.flush(60):
        raise RuntimeError("paced records not acknowledged")
    return sent


def latency_records(workload: Workload, first_update_id: int = 900_000_000) -> Iterator[Record]:
    """Fresh updates (new ids) over the same chats, so the handler sees chats with state."""
    i = 0
    while True:
        yield encode_update(i % workload.chats, first_update_id + i, f"ping {i}")
        i += 1


def _produce(p: Producer, topic: str, r: Record, timestamp_ms: int | None) -> None:
    kwargs: dict[str, Any] = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
    headers: list[tuple[str, str | bytes | None]] = list(r.headers)
    while True:
        try:
            p.produce(topic, key=r.key, value=r.value, headers=headers, **kwargs)
            break
        except BufferError:  # local queue full: let deliveries drain
            p.poll(0.05)
    p.poll(0)
