"""Replies as streams would write them, a bots file pointing at the sandbox, and readers of results."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from botstream.schemas.headers import CORRELATION_ID
from botstream.schemas.records import chat_key
from tests.pipeline import CODEC, producer

__all__ = ["CODEC", "chat_replies", "expected_by_chat", "log_events", "make_reply", "metric_sum",
           "produce_replies", "scrape", "texts_by_chat", "write_sinks_bots"]

SEQ_STRIDE = 1000  # as botstream.streams.processor: chat_seq = update offset * 1000 + index


def make_reply(chat_id: str, text: str, index: int, *, bot_id: str = "tg", platform: str = "telegram",
               chat_type: str = "private", **extra: Any) -> dict[str, Any]:
    """A Reply like `UpdateProcessor.build_reply` makes one; `index` orders the chat's replies."""
    now = int(time.time() * 1000)
    update_id = uuid.uuid4().hex
    reply = {
        "reply_id": hashlib.blake2b(f"reply|{platform}|{bot_id}|{update_id}|0".encode(), digest_size=16).hexdigest(),
        "chat_key": chat_key(platform, bot_id, chat_id), "platform": platform, "bot_id": bot_id, "chat_id": chat_id,
        "chat_type": chat_type, "kind": "text", "text": text, "markup": None, "options": {}, "reply_to": None,
        "target_message_id": None, "thread_id": None, "chat_seq": (index + 1) * SEQ_STRIDE,
        "causation_id": update_id, "correlation_id": uuid.uuid4().hex[:16], "update_received_at_ms": now,
        "created_at_ms": now, "attempt": 0, "not_before_ms": 0, "first_error": None, "last_error": None,
        "platform_meta": {}, "traceparent": None,
    }
    reply.update(extra)
    return reply


def chat_replies(chats: Iterable[str], per_chat: int, **kw: Any) -> list[dict[str, Any]]:
    """`per_chat` replies to each chat, interleaved across chats (as a busy bot writes them)."""
    chats = list(chats)
    return [make_reply(c, f"{c} says #{i}", i, **kw) for i in range(per_chat) for c in chats]


def produce_replies(bootstrap: str, topic: str, replies: list[dict[str, Any]]) -> None:
    p = producer(bootstrap)
    for r in replies:
        p.produce(topic, key=r["chat_key"].encode(), value=CODEC.encode("reply", r),
                  headers=[(CORRELATION_ID, r["correlation_id"].encode())])
        p.poll(0)
    assert p.flush(60) == 0


def write_sinks_bots(path: Path, sandbox_url: str, *, tg_limits: str = "", dc_limits: str = "",
                     coalesce: bool = True) -> Path:
    flag = "true" if coalesce else "false"
    path.write_text(f'''
[[bots]]
id = "tg"
platform = "telegram"
secret_token = "tg-secret"
token = "123456:TEST-token-tg"
api_base_url = "{sandbox_url}"
coalesce = {flag}
{("[bots.limits]" + chr(10) + tg_limits) if tg_limits else ""}

[[bots]]
id = "dc"
platform = "discord"
public_key = "{"ab" * 32}"
application_id = "900"
bot_token = "MTIzNDU2Nzg5.dc-token"
api_base_url = "{sandbox_url}"
coalesce = {flag}
{("[bots.limits]" + chr(10) + dc_limits) if dc_limits else ""}
''')
    return path


def texts_by_chat(deliveries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The sandbox's accepted messages per chat, merged messages split back into replies."""
    out: dict[str, list[str]] = defaultdict(list)
    for d in deliveries:
        out[d["chat"]].extend(d["text"].split("\n\n"))
    return out


def expected_by_chat(replies: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for r in sorted(replies, key=lambda r: r["chat_seq"]):
        out[r["chat_id"]].append(r["text"])
    return out


def scrape(port: int) -> dict[str, float]:
    """A worker's /metrics, as {"name{labels}": value}."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def metric_sum(metrics: dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for key, value in metrics.items():
        if key == name or key.startswith(name + "{"):
            if all(f'{k}="{v}"' in key for k, v in labels.items()):
                total += value
    return total


def log_events(output: str, msg_prefix: str) -> list[dict[str, Any]]:
    """JSON log lines of a worker whose message starts with `msg_prefix`; `ts` read as unix seconds
    (the lines carry ISO-8601 UTC timestamps)."""
    out = []
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if str(event.get("msg", "")).startswith(msg_prefix):
                ts = event.get("ts")
                if isinstance(ts, str):
                    event["ts"] = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                out.append(event)
    return out
