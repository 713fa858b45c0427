"""The ingest ASGI app with an in-memory sink: routing, answers, records, correlation, probes."""

from __future__ import annotations

import json
import logging
import re

import pytest
from ingest_shell_support import (
    TOPIC,
    MemorySink,
    call,
    discord_command,
    discord_headers,
    hub_headers,
    make_app,
    slack_event,
    slack_headers,
    telegram_headers,
    telegram_update,
    whatsapp_messages,
)

from botstream.ingest.sink import NotDurable, SinkStatus
from botstream.schemas.codec import Codec

CODEC = Codec()
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01")


def decoded(record) -> dict:  # type: ignore[no-untyped-def]
    return CODEC.decode("update", record.value)


async def test_telegram_update_becomes_one_chat_keyed_record_with_headers() -> None:
    app, sink = make_app()
    body = telegram_update(update_id=10, chat_id=42, text="hello")
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=body)
    assert (reply.status, reply.body) == (200, b"")
    [record] = sink.records
    update = decoded(record)
    assert (record.topic, record.key) == (TOPIC, b"telegram:tg:42")
    assert (update["update_id"], update["text"], update["raw"]) == ("10", "hello", body)
    headers = dict(record.headers)
    assert headers["platform"] == b"telegram"
    assert headers["correlation-id"].decode() == update["correlation_id"] == reply.headers["x-request-id"]
    assert headers["traceparent"].decode() == update["traceparent"]
    assert TRACEPARENT.fullmatch(update["traceparent"])


async def test_incoming_request_id_and_traceparent_are_kept() -> None:
    app, sink = make_app()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = telegram_headers(**{"x-request-id": "lb-req-123", "traceparent": parent})
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=headers, body=telegram_update())
    update = decoded(sink.records[0])
    assert reply.headers["x-request-id"] == update["correlation_id"] == "lb-req-123"
    assert dict(sink.records[0].headers)["correlation-id"] == b"lb-req-123"
    assert update["traceparent"] == parent


async def test_unsafe_request_id_is_replaced_and_still_returned() -> None:
    app, sink = make_app()
    headers = telegram_headers(**{"x-request-id": "bad id\twith spaces"})
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=headers, body=telegram_update())
    assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])
    assert decoded(sink.records[0])["correlation_id"] == reply.headers["x-request-id"]


async def test_correlation_id_is_returned_on_refusals_too() -> None:
    app, _ = make_app()
    reply = await call(app, "POST", "/webhooks/telegram/nobody", headers={"x-request-id": "abc"})
    assert (reply.status, reply.headers["x-request-id"]) == (404, "abc")


async def test_slack_event_and_url_verification() -> None:
    app, sink = make_app()
    body = slack_event(event_id="Ev42", channel="C9")
    reply = await call(app, "POST", "/webhooks/slack/sl", headers=slack_headers(body), body=body)
    assert reply.status == 200
    assert sink.records[0].key == b"slack:sl:T1/C9"
    challenge = json.dumps({"type": "url_verification", "challenge": "ch-1", "token": "x"}).encode()
    reply = await call(app, "POST", "/webhooks/slack/sl", headers=slack_headers(challenge), body=challenge)
    assert (reply.status, reply.body) == (200, b"ch-1")
    assert len(sink.records) == 1  # the handshake produced nothing


async def test_discord_ping_is_answered_and_commands_are_deferred() -> None:
    app, sink = make_app()
    ping = b'{"type":1}'
    reply = await call(app, "POST", "/webhooks/discord/dc", headers=discord_headers(ping), body=ping)
    assert (reply.status, reply.body, sink.records) == (200, b'{"type":1}', [])
    body = discord_command(channel_id="555")
    reply = await call(app, "POST", "/webhooks/discord/dc", headers=discord_headers(body), body=body)
    assert (reply.status, json.loads(reply.body)) == (200, {"type": 5})
    assert reply.headers["content-type"] == "application/json"
    assert sink.records[0].key == b"discord:dc:555"


async def test_whatsapp_verification_get_and_batched_post() -> None:
    app, sink = make_app()
    query = "hub.mode=subscribe&hub.verify_token=wa-verify-token&hub.challenge=1158201444"
    reply = await call(app, "GET", "/webhooks/whatsapp/wa", query=query)
    assert (reply.status, reply.body) == (200, b"1158201444")
    wrong = await call(app, "GET", "/webhooks/whatsapp/wa", query=query.replace("wa-verify-token", "nope"))
    assert wrong.status == 403
    body = whatsapp_messages("4915550001", "4915550002")
    reply = await call(app, "POST", "/webhooks/whatsapp/wa", headers=hub_headers(body, "wa-app-secret"), body=body)
    assert reply.status == 200
    assert [r.key for r in sink.records] == [b"whatsapp:wa:1065/4915550001", b"whatsapp:wa:1065/4915550002"]
    assert len(sink.batches) == 1  # one request, one produce_all: acked together


async def test_generic_webhook() -> None:
    app, sink = make_app()
    body = json.dumps({"id": "d-1", "chat_id": "room-1", "text": "ping"}).encode()
    headers = hub_headers(body, "generic-secret", **{"x-github-delivery": "not-signed"})
    reply = await call(app, "POST", "/webhooks/generic/gen", headers=headers, body=body)
    assert reply.status == 200
    assert decoded(sink.records[0])["update_id"] == "d-1"


@pytest.mark.parametrize(("method", "path", "status", "reason"), [
    ("POST", "/webhooks/telegram/nobody", 404, "unknown_bot"),
    ("POST", "/webhooks/telegram/sl", 404, "unknown_bot"),  # a slack bot through the telegram URL
    ("POST", "/webhooks/icq/tg", 404, "unknown_platform"),
    ("POST", "/webhooks/telegram", 404, "unknown_route"),
    ("POST", "/webhooks/telegram/tg/extra", 404, "unknown_route"),
    ("GET", "/webhooks/telegram/tg", 405, "method_not_allowed"),
    ("PUT", "/webhooks/whatsapp/wa", 405, "method_not_allowed"),
])
async def test_routing_refusals_never_touch_the_body_or_the_sink(method: str, path: str, status: int,
                                                                 reason: str) -> None:
    app, sink = make_app()
    reply = await call(app, method, path, headers=telegram_headers(), body=telegram_update())
    assert (reply.status, reply.json(), reply.consumed) == (status, {"error": reason}, 0)
    assert sink.batches == []


async def test_method_not_allowed_says_what_is() -> None:
    app, _ = make_app()
    assert (await call(app, "GET", "/webhooks/slack/sl")).headers["allow"] == "POST"
    assert (await call(app, "DELETE", "/webhooks/whatsapp/wa")).headers["allow"] == "GET, POST"


async def test_every_verification_refusal_answers_its_status_and_writes_nothing() -> None:
    app, sink = make_app()
    update = telegram_update()
    slack_body = slack_event()
    cases = [
        (401, "signature_missing", "/webhooks/telegram/tg", {"content-type": "application/json"}, update),
        (401, "signature_mismatch", "/webhooks/telegram/tg", telegram_headers("wrong"), update),
        (401, "signature_mismatch", "/webhooks/telegram/tg2", telegram_headers("tg-secret-A"), update),  # A's token, B's URL
        (401, "timestamp_stale", "/webhooks/slack/sl", slack_headers(slack_body, ts=1_600_000_000), slack_body),
        (401, "signature_mismatch", "/webhooks/slack/sl", slack_headers(slack_body, secret="other"), slack_body),
        (401, "signature_mismatch", "/webhooks/generic/gen", hub_headers(b'{"chat_id":1}', "wa-app-secret"),
         b'{"chat_id":1}'),
        (415, "content_type_not_json", "/webhooks/telegram/tg",
         {**telegram_headers(), "content-type": "text/plain"}, update),
        (400, "malformed_json", "/webhooks/telegram/tg", telegram_headers(), b'{"update_id": 1,'),
        (400, "json_not_object", "/webhooks/telegram/tg", telegram_headers(), b"[1, 2]"),
    ]
    for status, reason, path, headers, body in cases:
        reply = await call(app, "POST", path, headers=headers, body=body)
        assert (reply.status, reply.json()) == (status, {"error": reason}), (path, reason)
        assert reply.headers["content-type"] == "application/json"
    assert sink.batches == []


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app, sink = make_app()
    headers = {**telegram_headers(), "content-length": str(64 * 1024 + 1)}
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=headers, body=b"x" * 100)
    assert (reply.status, reply.json()) == (413, {"error": "body_too_large"})
    assert (reply.receive_calls, reply.consumed) == (0, 0)
    assert reply.headers["connection"] == "close"
    assert sink.batches == []


async def test_nothing_reaches_the_sink_for_an_unverified_body_of_any_size() -> None:
    app, sink = make_app()
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers("nope"),
                       body=telegram_update())
    assert reply.status == 401
    assert sink.batches == []


async def test_sink_not_durable_is_503_with_retry_after() -> None:
    app, _ = make_app(MemorySink(NotDurable("ack_timeout")), retry_after_s=7)
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=telegram_update())
    assert (reply.status, reply.json(), reply.headers["retry-after"]) == (503, {"error": "ack_timeout"}, "7")


async def test_a_bug_is_a_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app(MemorySink(RuntimeError("boom tg-secret-A")))
    with caplog.at_level(logging.ERROR, logger="botstream.ingest.access"):
        reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=telegram_update())
    assert (reply.status, reply.json()) == (500, {"error": "internal_error"})
    assert "boom" not in reply.body.decode()


async def test_verified_but_ignored_updates_are_200_without_producing() -> None:
    app, sink = make_app()
    body = json.dumps({"update_id": 5, "poll": {"id": "p"}}).encode()
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=body)
    assert reply.status == 200
    assert sink.batches == []


async def test_client_gone_mid_body_gets_no_answer_and_writes_nothing() -> None:
    from ingest_shell_support import Body

    app, sink = make_app()
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(),
                       body=Body([b'{"update_id":', b"1}"], disconnect_after=1))
    assert (reply.status, sink.batches) == (0, [])


async def test_one_debug_line_per_request_with_context_and_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    with caplog.at_level(logging.DEBUG, logger="botstream.ingest.access"):
        await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(**{"x-request-id": "r-1"}),
                   body=telegram_update(text="private words"))
        await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers("wrong"), body=telegram_update())
    ok, refused = [r for r in caplog.records if r.name == "botstream.ingest.access" and r.levelno == logging.DEBUG]
    assert (ok.platform, ok.bot, ok.status, ok.correlation_id) == ("telegram", "tg", 200, "r-1")  # type: ignore[attr-defined]
    assert "1 update(s)" in ok.getMessage()
    assert (refused.status, refused.reason) == (401, "signature_mismatch")  # type: ignore[attr-defined]
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "private words" not in text and "tg-secret-A" not in text


async def test_health_and_readiness_follow_the_sink() -> None:
    app, sink = make_app()
    assert (await call(app, "GET", "/healthz")).status == 200
    assert (await call(app, "GET", "/readyz")).json() == {"status": "ok"}
    sink.state = SinkStatus(alive=True, ready=False, reason="all brokers down")
    reply = await call(app, "GET", "/readyz")
    assert (reply.status, reply.json()) == (503, {"status": "unavailable", "reason": "all brokers down"})
    assert (await call(app, "GET", "/healthz")).status == 200
    sink.state = SinkStatus(alive=False, ready=False, reason="fatal")
    assert (await call(app, "GET", "/healthz")).status == 503


async def test_metrics_endpoint_counts_requests() -> None:
    app, _ = make_app()
    await call(app, "POST", "/webhooks/generic/gen", headers=hub_headers(b"{}", "bad"), body=b"{}")
    reply = await call(app, "GET", "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    text = reply.body.decode()
    assert 'botstream_ingest_requests_total{bot="gen",platform="generic",status="401"}' in text
    assert 'botstream_ingest_verification_failures_total{platform="generic",reason="signature_mismatch"}' in text
    assert "botstream_ingest_ack_seconds_bucket" in text


async def test_unknown_paths_and_probe_methods() -> None:
    app, _ = make_app()
    assert (await call(app, "GET", "/")).status == 404
    assert (await call(app, "POST", "/healthz")).status == 405


async def test_lifespan_runs_startup_and_shutdown_hooks() -> None:
    calls: list[str] = []

    async def up() -> None:
        calls.append("up")

    async def down() -> None:
        calls.append("down")

    app, _ = make_app(on_startup=[up], on_shutdown=[down])
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict:  # type: ignore[type-arg]
        return inbox.pop(0)

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert calls == ["up", "down"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
