"""Test doubles for the ingest shell: an in-memory RecordSink, an ASGI driver, signed requests.

No sockets: the app is called as the ASGI callable it is, with `receive` / `send` written here, so
a test can count how many body bytes the app consumed or see that it never asked for the body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from botstream.core.bots import BotRegistry, parse_bots
from botstream.ingest.app import IngestApp
from botstream.ingest.platforms.hub_signature import hub_signature
from botstream.ingest.platforms.slack import slack_signature
from botstream.ingest.sink import OutboundRecord, SinkStatus

DISCORD_KEY = Ed25519PrivateKey.generate()
DISCORD_PUBLIC_HEX = DISCORD_KEY.public_key().public_bytes_raw().hex()
TOPIC = "t.updates"
LIMIT = 64 * 1024

BOTS_TOML = f"""
[[bots]]
id = "tg"
platform = "telegram"
secret_token = "tg-secret-A"
token = "111:AAA"

[[bots]]
id = "tg2"
platform = "telegram"
secret_token = "tg-secret-B"
token = "222:BBB"

[[bots]]
id = "sl"
platform = "slack"
signing_secret = "slack-signing-secret"
bot_token = "xoxb-1"

[[bots]]
id = "dc"
platform = "discord"
public_key = "{DISCORD_PUBLIC_HEX}"
application_id = "999"
bot_token = "discord-bot-token"

[[bots]]
id = "wa"
platform = "whatsapp"
app_secret = "wa-app-secret"
verify_token = "wa-verify-token"
access_token = "EAAG-token"
phone_number_id = "1065"

[[bots]]
id = "gen"
platform = "generic"
secret = "generic-secret"
"""


def bots() -> BotRegistry:
    return parse_bots(BOTS_TOML)


class MemorySink:
    """A RecordSink that keeps what it is given, or raises the error it was told to."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.batches: list[list[OutboundRecord]] = []
        self.state = SinkStatus(alive=True, ready=True)

    async def produce_all(self, records: Sequence[OutboundRecord]) -> None:
        if self.error is not None:
            raise self.error
        self.batches.append(list(records))

    def status(self) -> SinkStatus:
        return self.state

    @property
    def records(self) -> list[OutboundRecord]:
        return [r for batch in self.batches for r in batch]


def make_app(sink: MemorySink | None = None, **kw: Any) -> tuple[IngestApp, MemorySink]:
    sink = sink or MemorySink()
    return IngestApp(bots=bots(), sink=sink, updates_topic=TOPIC, max_body_bytes=LIMIT, **kw), sink


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    consumed: int = 0  # body bytes the app pulled through `receive`
    receive_calls: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Body:
    """A request body as the server would deliver it: in chunks, possibly without end."""

    chunks: list[bytes] = field(default_factory=list)
    endless_chunk: bytes | None = None  # after `chunks`, repeat this forever (more_body=True)
    disconnect_after: int | None = None  # chunks before an http.disconnect


async def call(app: IngestApp, method: str, path: str, *, headers: dict[str, str] | None = None,
               body: bytes | Body = b"", query: str = "") -> Reply:
    stream = body if isinstance(body, Body) else Body([body])
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
        "raw_path": path.encode(), "query_string": query.encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
    }
    reply = Reply(0, {}, b"")
    index = 0

    async def receive() -> dict[str, Any]:
        nonlocal index
        reply.receive_calls += 1
        if stream.disconnect_after is not None and index >= stream.disconnect_after:
            return {"type": "http.disconnect"}
        if index < len(stream.chunks):
            chunk = stream.chunks[index]
            index += 1
            more = index < len(stream.chunks) or stream.endless_chunk is not None
        else:
            assert stream.endless_chunk is not None, "app read past the end of the body"
            chunk, more = stream.endless_chunk, True
        reply.consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            reply.body += message.get("body", b"")

    await app(scope, receive, send)
    return reply


# -- signed requests, one per platform ---------------------------------------------------------------

def telegram_update(update_id: int = 1, chat_id: int = 42, text: str = "hello") -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": 7, "date": 1_700_000_000, "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False}, "text": text}}).encode()


def telegram_headers(token: str = "tg-secret-A", **extra: str) -> dict[str, str]:
    return {"content-type": "application/json", "x-telegram-bot-api-secret-token": token, **extra}


def slack_headers(body: bytes, secret: str = "slack-signing-secret", ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {"content-type": "application/json", "x-slack-request-timestamp": stamp,
            "x-slack-signature": slack_signature(secret, stamp, body)}


def slack_event(event_id: str = "Ev1", channel: str = "C1", text: str = "hi") -> bytes:
    return json.dumps({"type": "event_callback", "team_id": "T1", "event_id": event_id, "event_time": 1_700_000_000,
                       "event": {"type": "message", "channel": channel, "channel_type": "channel", "user": "U1",
                                 "text": text, "ts": "1700000000.000100"}}).encode()


def discord_headers(body: bytes, key: Ed25519PrivateKey = DISCORD_KEY) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"content-type": "application/json", "x-signature-timestamp": stamp,
            "x-signature-ed25519": key.sign(stamp.encode() + body).hex()}


def discord_command(interaction_id: str = "1200000000000000001", channel_id: str = "555") -> bytes:
    return json.dumps({"id": interaction_id, "type": 2, "application_id": "999", "token": "itok", "channel_id": channel_id,
                       "guild_id": "777", "member": {"user": {"id": "42"}},
                       "data": {"name": "ask", "options": [{"name": "q", "type": 3, "value": "why"}]}}).encode()


def hub_headers(body: bytes, secret: str, **extra: str) -> dict[str, str]:
    return {"content-type": "application/json", "x-hub-signature-256": hub_signature(secret, body), **extra}


def whatsapp_messages(*wa_ids: str) -> bytes:
    messages = [{"from": wa_id, "id": f"wamid.{n}", "timestamp": "1700000000", "type": "text",
                 "text": {"body": f"msg {n}"}} for n, wa_id in enumerate(wa_ids)]
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "biz", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
                                       "metadata": {"phone_number_id": "1065"}, "messages": messages}}]}]}).encode()
