"""Slack end to end, each process real (ingest, a streams worker, a sinks worker, the sandbox, the
broker): the FAQ bot's `/ask` as a signed slash command, an ephemeral answer through the command's
response_url, a button press, and the size contract at its limit and one byte above it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from botstream.core.bots import load_bots_file
from botstream.core.settings import Settings
from botstream.ingest.platforms.slack import slack_signature
from botstream.ingest.server import build_app
from botstream.ingest.sink import OutboundRecord, SinkStatus
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import free_port
from botstream.sandbox import SandboxConfig, SandboxServer
from botstream.sandbox.platforms.slack import response_url
from tests.integration.ingest.support import Ingest, start_ingest
from tests.pipeline import TopicReader
from tests.processes import ProcessGroup, wait_until

pytestmark = pytest.mark.kafka
SECRET = "e2e-slack-signing-secret"
TEAM = "T0E2E"


def bots_toml(sandbox: str) -> str:
    return f"""
[[bots]]
id = "faq"
platform = "slack"
signing_secret = "{SECRET}"
bot_token = "xoxb-e2e-faq"
api_base_url = "{sandbox}"
handler = "botstream.streams.examples.faq"
[bots.integrations.llm]
base_url = "{sandbox}/upstream/llm"

[[bots]]
id = "private"
platform = "slack"
signing_secret = "{SECRET}"
bot_token = "xoxb-e2e-private"
api_base_url = "{sandbox}"
handler = "tests.e2e.slack_bots"
"""


def signed(body: bytes, content_type: str, request_id: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time()))
    headers = {"content-type": content_type, "x-slack-request-timestamp": stamp,
               "x-slack-signature": slack_signature(SECRET, stamp, body)}
    if request_id:
        headers["x-request-id"] = request_id
    return headers


def slash_command(sandbox: str, command: str, text: str, channel: str) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"token": "deprecated", "team_id": TEAM, "team_domain": "e2e", "channel_id": channel,
                      "channel_name": "general", "user_id": "U0E2E", "user_name": "ada", "command": command,
                      "text": text, "api_app_id": "A0E2E", "response_url": response_url(sandbox, TEAM, channel),
                      "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"}).encode()
    return body, signed(body, "application/x-www-form-urlencoded")


def message_event(text: str, channel: str, event_id: str) -> bytes:
    return json.dumps({"type": "event_callback", "team_id": TEAM, "api_app_id": "A0E2E", "event_id": event_id,
                       "event_time": int(time.time()), "event": {
                           "type": "message", "channel": channel, "channel_type": "channel", "user": "U0E2E",
                           "text": text, "ts": f"{int(time.time())}.000100"}}).encode()


@dataclass
class Stack:
    settings: Settings
    bootstrap: str
    bots_file: Path
    sandbox: SandboxServer
    ingest: Ingest

    def deliveries(self, chat: str) -> list[dict[str, Any]]:
        return self.sandbox.client.deliveries(platform="slack", chat=chat)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("slack-e2e")
    settings = Settings.from_env({}, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"e2e-{uuid.uuid4().hex[:8]}",
                                 partitions=2, data_dir=tmp / "data", cache_dir=Settings().cache_dir)
    assert apply_catalog(settings, kafka_bootstrap).ok
    sandbox = SandboxServer(SandboxConfig().with_limits_disabled()).start()
    bots_file = tmp / "bots.toml"
    bots_file.write_text(bots_toml(sandbox.base_url))
    group = ProcessGroup(tmp / "logs")
    try:
        common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "BOTSTREAM_TOPIC_PREFIX": settings.topic_prefix,
                  "BOTSTREAM_PARTITIONS": "2", "BOTSTREAM_BOTS_FILE": str(bots_file), "BOTSTREAM_LOG_LEVEL": "INFO"}
        group.start("streams", ["-m", "botstream", "streams"], env={
            **common, "BOTSTREAM_DATA_DIR": str(tmp / "data-streams"), "BOTSTREAM_STREAMS_WEB_PORT": str(free_port())})
        group.start("sinks", ["-m", "botstream", "sinks"], env={
            **common, "BOTSTREAM_DATA_DIR": str(tmp / "data-sinks"), "BOTSTREAM_SINKS_WEB_PORT": str(free_port())})
        ingest = start_ingest(group, settings, kafka_bootstrap, bots_file)
        yield Stack(settings, kafka_bootstrap, bots_file, sandbox, ingest)
    finally:
        group.stop_all()
        sandbox.stop()


def test_faq_ask_as_a_slash_command_is_answered_in_channel(stack: Stack) -> None:
    body, headers = slash_command(stack.sandbox.base_url, "/ask", "what is botstream?", "C0ASK")
    started = time.monotonic()
    response = stack.ingest.post("/webhooks/slack/faq", body, headers)
    assert (response.status_code, response.content) == (200, b"")  # acknowledged, nothing shown in Slack's place
    assert time.monotonic() - started < 3.0  # Slack's deadline
    got = wait_until(lambda: stack.deliveries("C0ASK"), timeout=120, what="the /ask answer")
    assert [(d["method"], d["text"]) for d in got] == [("chat.postMessage", "[llm] You asked: what is botstream?")]


def test_an_ephemeral_answer_goes_through_the_response_url_and_a_button_press_is_answered(stack: Stack) -> None:
    body, headers = slash_command(stack.sandbox.base_url, "/secret", "42", "C0EPH")
    assert stack.ingest.post("/webhooks/slack/private", body, headers).status_code == 200
    got = wait_until(lambda: stack.deliveries("C0EPH"), timeout=120, what="the ephemeral answer")
    assert [(d["method"], d["text"]) for d in got] == [("response_url:ephemeral", "only you can see: 42")]
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": "U0E2E"}, "api_app_id": "A0E2E",
               "trigger_id": f"{uuid.uuid4().hex}", "channel": {"id": "C0BTN"},
               "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0BTN"},
               "response_url": response_url(stack.sandbox.base_url, TEAM, "C0BTN", kind="actions"),
               "actions": [{"action_id": "approve", "block_id": "b", "value": "yes", "type": "button"}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    response = stack.ingest.post("/webhooks/slack/private", body, signed(body, "application/x-www-form-urlencoded"))
    assert response.status_code == 200
    got = wait_until(lambda: stack.deliveries("C0BTN"), timeout=120, what="the button's answer")
    assert [(d["method"], d["text"]) for d in got] == [("chat.postMessage", "pressed yes")]


class _Keep:
    """An in-memory sink: the bisection below runs ingest's own app without a broker."""

    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []

    async def produce_all(self, records: list[OutboundRecord]) -> None:
        self.records.extend(records)

    def status(self) -> SinkStatus:
        return SinkStatus(True, True)


async def _status(app: Any, body: bytes, headers: dict[str, str]) -> int:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": "POST", "path": "/webhooks/slack/faq", "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def largest_text(stack: Stack, event_id: str, request_id: str) -> int:
    """The longest Slack message text ingest accepts, found with ingest's own app and the same
    catalog, bots and request id (the record's size depends on them), not with a guess."""
    app = build_app(stack.settings, load_bots_file(stack.bots_file), sink=_Keep())
    low, high = 1, 1_000_000
    while low < high:
        mid = (low + high + 1) // 2
        body = message_event("a" * mid, "C0BIG", event_id)
        status = asyncio.run(_status(app, body, signed(body, "application/json", request_id)))
        low, high = (mid, high) if status == 200 else (low, mid - 1)
    return low


def test_the_size_contract_end_to_end_at_the_limit_and_one_byte_above(stack: Stack) -> None:
    event_id, request_id = f"Ev{uuid.uuid4().hex[:12]}", "e2e-size-" + "0" * 23
    limit = largest_text(stack, event_id, request_id)
    over = message_event("a" * (limit + 1), "C0BIG", event_id + "x")
    refused = stack.ingest.post("/webhooks/slack/faq", over, signed(over, "application/json", request_id))
    assert (refused.status_code, refused.json()) == (413, {"error": "too_large_for_replies"})
    at = message_event("a" * limit, "C0BIG", event_id)
    assert stack.ingest.post("/webhooks/slack/faq", at, signed(at, "application/json", request_id)).status_code == 200
    # every later stage writes what it derives from it: the UpdateAccepted event, then the answer
    events = TopicReader(stack.bootstrap, stack.settings.topic("messages"), "conversation_event")
    quarantine = TopicReader(stack.bootstrap, stack.settings.topic("quarantine"), None)
    try:
        wait_until(lambda: events.poll() is not None and any(
            e["payload"].get("type") == "UpdateAccepted" and e["causation_id"] == event_id
            and len(e["payload"]["text"]) == limit for _, e, _ in events.items), timeout=120,
            what="the UpdateAccepted event on messages")
        got = wait_until(lambda: stack.deliveries("C0BIG"), timeout=120, what="the FAQ's answer")
        assert got[0]["text"].startswith("I don't know that one yet.")
        assert quarantine.wait_for(1, timeout=3) == []
    finally:
        events.close()
        quarantine.close()
