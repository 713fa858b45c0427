"""Body limits: enforced while streaming, without reading the rest, per platform."""

from __future__ import annotations

import json

from ingest_shell_support import LIMIT, Body, call, hub_headers, make_app, telegram_headers, whatsapp_messages

from botstream.ingest.asgi import read_body
from botstream.ingest.errors import PayloadTooLarge

CHUNK = 16 * 1024


async def test_an_endless_chunked_body_is_cut_off_just_past_the_limit() -> None:
    app, sink = make_app()
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(),
                       body=Body(endless_chunk=b"x" * CHUNK))
    assert (reply.status, reply.json()) == (413, {"error": "body_too_large"})
    assert LIMIT < reply.consumed <= LIMIT + CHUNK
    assert reply.headers["connection"] == "close"
    assert sink.batches == []


async def test_a_body_of_exactly_the_limit_is_read_whole() -> None:
    app, _ = make_app()
    chunks = [b"x" * CHUNK] * (LIMIT // CHUNK)
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=Body(chunks))
    # Read completely, then refused by the adapter for what it is (not JSON), not for its size.
    assert (reply.status, reply.consumed) == (400, LIMIT)


async def test_whatsapp_has_its_own_larger_limit() -> None:
    app, sink = make_app()
    payload = json.loads(whatsapp_messages("4915550001"))
    payload["padding"] = "p" * (LIMIT * 2)  # over the default limit, far under WhatsApp's 3 MB
    body = json.dumps(payload).encode()
    reply = await call(app, "POST", "/webhooks/whatsapp/wa", headers=hub_headers(body, "wa-app-secret"), body=body)
    assert reply.status == 200
    assert len(sink.records) == 1
    telegram = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=body)
    assert telegram.status == 413


async def test_read_body_joins_chunks_and_refuses_a_single_oversized_chunk() -> None:
    chunks = [{"type": "http.request", "body": b"ab", "more_body": True},
              {"type": "http.request", "body": b"cd", "more_body": False}]

    async def receive() -> dict:  # type: ignore[type-arg]
        return chunks.pop(0)

    assert await read_body(receive, 4, None) == b"abcd"

    async def one_big() -> dict:  # type: ignore[type-arg]
        return {"type": "http.request", "body": b"12345", "more_body": False}

    try:
        await read_body(one_big, 4, None)
    except PayloadTooLarge as exc:
        assert exc.reason == "body_too_large"
    else:
        raise AssertionError("a 5-byte body passed a 4-byte limit")
