"""`botstream ingest` on the real broker: each platform's signed webhook becomes exactly the expected
records on `updates`, keyed by chat (on aiokafka's partition for that key), with the headers;
handshakes are answered; every bad input is refused with its 4xx and writes nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.ingest.conftest import IngestStack
from tests.integration.ingest.support import (
    GENERIC_SECRET,
    TG2_SECRET,
    TG_SECRET,
    WA_SECRET,
    WA_VERIFY,
    discord,
    hub,
    raw_http,
    slack,
    telegram,
    whatsapp_batch,
)

pytestmark = pytest.mark.kafka
AIOKAFKA_PARTITION = DefaultPartitioner()


def unique_int() -> int:
    return uuid.uuid4().int % 10**12


def assert_headers(message: Any, update: dict[str, Any], platform: str) -> None:
    headers = dict(message.headers())
    assert headers["platform"] == platform.encode()
    assert headers["correlation-id"] == update["correlation_id"].encode()
    assert headers["traceparent"] == update["traceparent"].encode()


def assert_partition_is_aiokafkas(message: Any, partitions: int) -> None:
    expected = AIOKAFKA_PARTITION(message.key(), list(range(partitions)), list(range(partitions)))
    assert message.partition() == expected, "librdkafka and aiokafka disagree on the chat's partition"


def test_telegram_update_is_one_record_keyed_by_chat_with_headers(stack: IngestStack) -> None:
    update_id, chat_id = unique_int(), -1001234567890
    body, headers = telegram(update_id, chat_id, text="hello ingest")
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = stack.ingest.post("/webhooks/telegram/tg", body,
                                 {**headers, "x-request-id": "req-telegram-1", "traceparent": parent})
    assert (response.status_code, response.headers["x-request-id"]) == (200, "req-telegram-1")
    [(key, update, message)] = stack.records(lambda u: u["update_id"] == str(update_id), 1)
    assert key == f"telegram:tg:{chat_id}".encode()
    assert (update["text"], update["raw"], update["correlation_id"]) == ("hello ingest", body, "req-telegram-1")
    assert update["traceparent"] == parent
    assert_headers(message, update, "telegram")
    assert_partition_is_aiokafkas(message, stack.settings.partitions)


def test_chats_spread_over_partitions_exactly_as_aiokafka_would(stack: IngestStack) -> None:
    ids = {unique_int(): chat for chat in range(1, 13)}
    for update_id, chat in ids.items():
        body, headers = telegram(update_id, chat)
        assert stack.ingest.post("/webhooks/telegram/tg", body, headers).status_code == 200
    found = stack.records(lambda u: int(u["update_id"]) in ids, len(ids))
    for _, _, message in found:
        assert_partition_is_aiokafkas(message, stack.settings.partitions)
    assert len({m.partition() for _, _, m in found}) > 1


def test_slack_event_and_url_verification(stack: IngestStack) -> None:
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    body, headers = slack({"type": "event_callback", "team_id": "T1", "event_id": event_id, "event_time": 1,
                           "event": {"type": "message", "channel": "C42", "channel_type": "channel", "user": "U1",
                                     "text": "hi", "ts": "1700000000.000100"}})
    assert stack.ingest.post("/webhooks/slack/sl", body, headers).status_code == 200
    [(key, update, message)] = stack.records(lambda u: u["update_id"] == event_id, 1)
    assert key == b"slack:sl:T1/C42"
    assert_headers(message, update, "slack")
    before = stack.offsets()
    body, headers = slack({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                           "token": "x"})
    response = stack.ingest.post("/webhooks/slack/sl", body, headers)
    assert (response.status_code, response.text) == (200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert stack.offsets() == before


def test_discord_ping_and_command(stack: IngestStack) -> None:
    before = stack.offsets()
    body, headers = discord({"type": 1, "id": "1", "application_id": "999"})
    response = stack.ingest.post("/webhooks/discord/dc", body, headers)
    assert (response.status_code, response.json()) == (200, {"type": 1})
    assert stack.offsets() == before
    interaction_id = str((int(time.time() * 1000) - 1420070400000) << 22 | unique_int() % 4096)
    body, headers = discord({"id": interaction_id, "type": 2, "application_id": "999", "token": "itok",
                             "channel_id": "555", "guild_id": "777", "member": {"user": {"id": "42"}},
                             "data": {"name": "ask", "options": [{"name": "q", "type": 3, "value": "why"}]}})
    response = stack.ingest.post("/webhooks/discord/dc", body, headers)
    assert (response.status_code, response.json()) == (200, {"type": 5})
    [(key, update, message)] = stack.records(lambda u: u["update_id"] == interaction_id, 1)
    assert (key, update["kind"], update["text"]) == (b"discord:dc:555", "command", "/ask why")
    assert_headers(message, update, "discord")


def test_whatsapp_batch_is_one_record_per_message_and_the_get_handshake(stack: IngestStack) -> None:
    tag = uuid.uuid4().hex[:8]
    items = ((f"wamid.{tag}.1", "4915550001"), (f"wamid.{tag}.2", "4915550002"), (f"wamid.{tag}.3", "4915550001"))
    body, headers = hub(whatsapp_batch(*items), WA_SECRET)
    response = stack.ingest.post("/webhooks/whatsapp/wa", body, headers)
    assert response.status_code == 200
    found = stack.records(lambda u: u["update_id"].startswith(f"wamid.{tag}."), 3)
    assert sorted((u["update_id"], k) for k, u, _ in found) == [
        (f"wamid.{tag}.1", b"whatsapp:wa:1065/4915550001"), (f"wamid.{tag}.2", b"whatsapp:wa:1065/4915550002"),
        (f"wamid.{tag}.3", b"whatsapp:wa:1065/4915550001")]
    assert {u["correlation_id"] for _, u, _ in found} == {response.headers["x-request-id"]}
    before = stack.offsets()
    query = {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1158201444"}
    response = httpx.get(stack.ingest.url + "/webhooks/whatsapp/wa", params=query)
    assert (response.status_code, response.text) == (200, "1158201444")
    response = httpx.get(stack.ingest.url + "/webhooks/whatsapp/wa", params={**query, "hub.verify_token": "no"})
    assert response.status_code == 403
    assert stack.offsets() == before


def test_generic_webhook_replayed_with_new_unsigned_headers_is_one_update_id(stack: IngestStack) -> None:
    """The attack of issue 16: one captured, validly signed request replayed with new delivery and
    request ids. Every copy is acknowledged (a redelivery must be), and every copy carries the same
    update id, so streams' dedupe keeps one."""
    delivery = str(uuid.uuid4())
    body, headers = hub({"id": delivery, "chat_id": "room-7", "text": "deploy done", "user_id": 5}, GENERIC_SECRET)
    for n in range(4):
        forged = {**headers, "x-github-delivery": f"forged-{n}-{delivery}", "x-request-id": f"replay-{n}"}
        assert stack.ingest.post("/webhooks/generic/gen", body, forged).status_code == 200
    found = stack.records(lambda u: u["text"] == "deploy done" and u["raw"] == body, 4)
    assert {u["update_id"] for _, u, _ in found} == {delivery}
    key, update, message = found[0]
    assert (key, update["text"], update["user_id"]) == (b"generic:gen:room-7", "deploy done", "5")
    assert_headers(message, update, "generic")


def _bad_requests() -> list[tuple[str, int, str, str, bytes, dict[str, str]]]:
    tg_body, tg_headers = telegram(unique_int(), 99)
    slack_body, slack_headers = slack({"type": "event_callback", "event_id": "EvX", "team_id": "T1",
                                       "event": {"type": "message", "channel": "C1"}}, ts=int(time.time()) - 3600)
    dc_body, dc_headers = discord({"id": "1", "type": 2, "channel_id": "5"}, key=Ed25519PrivateKey.generate())
    gen_body, gen_headers = hub({"id": "d", "chat_id": "r"}, "not-the-secret")
    return [
        ("bad telegram token", 401, "signature_mismatch", "/webhooks/telegram/tg", tg_body,
         {**tg_headers, "x-telegram-bot-api-secret-token": "wrong"}),
        ("missing telegram token", 401, "signature_missing", "/webhooks/telegram/tg", tg_body,
         {"content-type": "application/json"}),
        ("bot A's token to bot B's URL", 401, "signature_mismatch", "/webhooks/telegram/tg2", tg_body, tg_headers),
        ("stale slack signature", 401, "timestamp_stale", "/webhooks/slack/sl", slack_body, slack_headers),
        ("discord signed by another key", 401, "signature_mismatch", "/webhooks/discord/dc", dc_body, dc_headers),
        ("generic bad hmac", 401, "signature_mismatch", "/webhooks/generic/gen", gen_body, gen_headers),
        ("unknown bot", 404, "unknown_bot", "/webhooks/telegram/nobody", tg_body, tg_headers),
        ("bot of another platform", 404, "unknown_bot", "/webhooks/slack/tg", tg_body, tg_headers),
        ("wrong content type", 415, "content_type_not_json", "/webhooks/telegram/tg", tg_body,
         {**tg_headers, "content-type": "application/x-www-form-urlencoded"}),
        ("malformed json", 400, "malformed_json", "/webhooks/telegram/tg2", b'{"update_id": 1, "message":',
         {**tg_headers, "x-telegram-bot-api-secret-token": TG2_SECRET}),
    ]


def test_every_bad_input_is_refused_with_its_status_and_writes_nothing(stack: IngestStack) -> None:
    before = stack.offsets()
    for name, status, reason, path, body, headers in _bad_requests():
        response = stack.ingest.post(path, body, headers)
        assert (response.status_code, response.json()) == (status, {"error": reason}), name
        assert response.headers["x-request-id"]
    response = httpx.get(stack.ingest.url + "/webhooks/telegram/tg")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert stack.offsets() == before


def _head(path: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {TG_SECRET}\r\n{extra}\r\n").encode()


def test_declared_oversized_body_is_413_before_any_body_is_sent(stack: IngestStack) -> None:
    before = stack.offsets()
    port = int(stack.ingest.url.rsplit(":", 1)[1])
    answer = raw_http(port, _head("/webhooks/telegram/tg", f"Content-Length: {stack.settings.max_body_bytes + 1}\r\n"))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'{"error": "body_too_large"}' in answer
    assert stack.offsets() == before


def test_streamed_oversized_body_is_cut_off_at_the_limit(stack: IngestStack) -> None:
    before = stack.offsets()
    port = int(stack.ingest.url.rsplit(":", 1)[1])
    chunk = 64 * 1024
    parts = [f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"] * (stack.settings.max_body_bytes // chunk)
    parts.append(b"1\r\nx")  # one byte past the limit; the terminating chunk is never needed
    answer = raw_http(port, _head("/webhooks/telegram/tg", "Transfer-Encoding: chunked\r\n"), tuple(parts))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer.lower()
    assert stack.offsets() == before


def test_probes_and_metrics(stack: IngestStack) -> None:
    assert httpx.get(stack.ingest.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(stack.ingest.url + "/readyz").json() == {"status": "ok"}
    text = httpx.get(stack.ingest.url + "/metrics").text
    assert 'botstream_ingest_records_produced_total{bot="tg",platform="telegram"}' in text
    assert "botstream_ingest_produce_seconds_count" in text
    assert "botstream_ingest_producer_queue_depth" in text
