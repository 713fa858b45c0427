"""Helpers for tests that drive the pipeline through its topics: build, produce and read records.

Their Kafka clients are configured by the project's client layer (`botstream.core.kafka`), so a test
record is keyed, partitioned and acknowledged exactly as the services' own records are.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from botstream.core.kafka import consumer_config, producer_config
from botstream.core.settings import Settings
from botstream.schemas import records
from botstream.schemas.codec import Codec
from botstream.schemas.headers import CORRELATION_ID

CODEC = Codec()


def make_update(chat_id: str, text: str | None, *, bot_id: str = "echo", platform: str = "telegram",
                update_id: str | None = None, kind: str = "message", from_bot: bool = False,
                **extra: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    update = {
        "platform": platform, "bot_id": bot_id, "chat_id": chat_id, "chat_type": "private", "user_id": "u1",
        "update_id": update_id or uuid.uuid4().hex, "kind": kind, "text": text, "attachments": [],
        "reply_to": None, "thread_id": None, "locale": "en", "platform_ts_ms": now, "received_at_ms": now,
        "correlation_id": uuid.uuid4().hex[:16], "from_bot": from_bot, "platform_meta": {},
        "traceparent": None, "raw": b"{}",
    }
    update.update(extra)
    return update


def chat_key(update: dict[str, Any]) -> str:
    return records.chat_key(update["platform"], update["bot_id"], update["chat_id"])


def client_settings(bootstrap: str) -> Settings:
    """Settings of a client of the cluster at `bootstrap` (what the config builders read)."""
    return Settings.from_env({}, kafka_bootstrap_servers=bootstrap)


def producer(bootstrap: str) -> Producer:
    return Producer(producer_config(client_settings(bootstrap), client_id="botstream-tests"))


def produce_updates(bootstrap: str, topic: str, updates: list[dict[str, Any]]) -> None:
    p = producer(bootstrap)
    for u in updates:
        p.produce(topic, key=chat_key(u).encode(), value=CODEC.encode("update", u),
                  headers=[(CORRELATION_ID, u["correlation_id"].encode())])
        p.poll(0)
    assert p.flush(60) == 0


class TopicReader:
    """Reads a topic from the beginning, decoding with the codec; keeps everything it has read."""

    def __init__(self, bootstrap: str, topic: str, record: str | None) -> None:
        self.record = record
        self.consumer = Consumer(consumer_config(client_settings(bootstrap), f"reader-{uuid.uuid4().hex[:8]}"))
        self.consumer.subscribe([topic])
        self.items: list[tuple[Any, Any, Any]] = []  # (key, value, message)

    def poll(self, seconds: float = 0.5) -> int:
        n = 0
        for msg in self.consumer.consume(1000, timeout=seconds):
            if msg.error():
                continue
            value = CODEC.decode(self.record, msg.value()) if self.record else msg.value()
            self.items.append((msg.key(), value, msg))
            n += 1
        return n

    def wait_for(self, count: int, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True,
                 settle: float = 0.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.items) < count and time.monotonic() < deadline and alive():
            self.poll()
        if settle:
            end = time.monotonic() + settle
            while time.monotonic() < end:
                self.poll(0.2)
        return [v for _, v, _ in self.items]

    def close(self) -> None:
        self.consumer.close()


def write_bots_file(path: Path, *, sandbox_url: str = "http://127.0.0.1:9", handler: str = "botstream.streams.examples.echo",
                    extra: str = "") -> Path:
    path.write_text(f'''
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "tg-secret-echo"
token = "123456:TEST-token-echo"
api_base_url = "{sandbox_url}"
handler = "{handler}"

[[bots]]
id = "faq"
platform = "slack"
signing_secret = "slack-signing-secret-faq"
bot_token = "xoxb-test-faq"
api_base_url = "{sandbox_url}"
handler = "botstream.streams.examples.faq"
{extra}
''')
    return path
