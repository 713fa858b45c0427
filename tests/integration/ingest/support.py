"""Running `botstream ingest` as a real process for tests, and signing what we send it.

Signatures come from the adapters' own public functions (and a fresh Ed25519 key for Discord), so
the tests sign exactly as the platforms do and verification is exercised for real.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from botstream.core.kafka import consumer_config
from botstream.core.settings import Settings
from botstream.ingest.platforms.hub_signature import hub_signature
from botstream.ingest.platforms.slack import slack_signature
from botstream.ops.embedded_kafka import free_port
from tests.pipeline import client_settings
from tests.processes import Child, ProcessGroup, wait_until

DISCORD_KEY = Ed25519PrivateKey.generate()
TG_SECRET, TG2_SECRET = "tg-secret-alpha", "tg-secret-bravo"
SLACK_SECRET = "slack-signing-secret-xyz"
WA_SECRET, WA_VERIFY = "wa-app-secret-xyz", "wa-verify-token-xyz"
GENERIC_SECRET = "generic-secret-xyz"


def write_bots(path: Path) -> Path:
    path.write_text(f"""
[[bots]]
id = "tg"
platform = "telegram"
secret_token = "{TG_SECRET}"
token = "111:AAA"

[[bots]]
id = "tg2"
platform = "telegram"
secret_token = "{TG2_SECRET}"
token = "222:BBB"

[[bots]]
id = "sl"
platform = "slack"
signing_secret = "{SLACK_SECRET}"
bot_token = "xoxb-1"

[[bots]]
id = "dc"
platform = "discord"
public_key = "{DISCORD_KEY.public_key().public_bytes_raw().hex()}"
application_id = "999"
bot_token = "discord-bot-token"

[[bots]]
id = "wa"
platform = "whatsapp"
app_secret = "{WA_SECRET}"
verify_token = "{WA_VERIFY}"
access_token = "EAAG-token"
phone_number_id = "1065"

[[bots]]
id = "gen"
platform = "generic"
secret = "{GENERIC_SECRET}"
""")
    return path


@dataclass
class Ingest:
    child: Child
    url: str

    def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> httpx.Response:
        return httpx.post(self.url + path, content=body, headers=headers, timeout=timeout)


def start_ingest(processes: ProcessGroup, settings: Settings, bootstrap: str, bots_file: Path,
                 *, name: str = "ingest", args: tuple[str, ...] = (), **env: str) -> Ingest:
    """`botstream ingest` on a free port, returned once /readyz says the broker is reachable."""
    port = free_port()
    child = processes.start(name, ["-m", "botstream", "ingest", *args], env={
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "BOTSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "BOTSTREAM_BOTS_FILE": str(bots_file), "BOTSTREAM_INGEST_PORT": str(port),
        "BOTSTREAM_PARTITIONS": str(settings.partitions), **env})
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert child.alive(), f"ingest exited:\n{child.output()[-3000:]}"
        try:
            return httpx.get(url + "/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, timeout=60, what="ingest /readyz")
    return Ingest(child, url)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """High watermarks: any record a 2xx acknowledged is below them by the time the 2xx arrived."""
    consumer = Consumer(consumer_config(client_settings(bootstrap), "watermarks"))
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
    finally:
        consumer.close()


def raw_http(port: int, head: bytes, body_parts: tuple[bytes, ...] = ()) -> bytes:
    """Send a hand-made request (to control exactly what is sent) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


# -- signed requests -----------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}


def telegram(update_id: int, chat_id: int, text: str = "hello", token: str = TG_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "language_code": "en"}, "text": text}}).encode()
    return body, {**JSON, "x-telegram-bot-api-secret-token": token}


def slack(payload: dict[str, Any], secret: str = SLACK_SECRET, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    return body, {**JSON, "x-slack-request-timestamp": stamp, "x-slack-signature": slack_signature(secret, stamp, body)}


def discord(payload: dict[str, Any], key: Ed25519PrivateKey = DISCORD_KEY) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    return body, {**JSON, "x-signature-timestamp": stamp, "x-signature-ed25519": key.sign(stamp.encode() + body).hex()}


def hub(payload: dict[str, Any], secret: str, **headers: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {**JSON, "x-hub-signature-256": hub_signature(secret, body), **headers}


def whatsapp_batch(*items: tuple[str, str]) -> dict[str, Any]:
    """A notification with one text message per (wamid, wa_id)."""
    messages = [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                 "text": {"body": f"hi from {wa_id}"}} for wamid, wa_id in items]
    return {"object": "whatsapp_business_account", "entry": [{"id": "biz", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1065"}, "messages": messages}}]}]}
