"""One size contract (issue 16): every topic's largest record is in the catalog, the broker and the
producers are configured from it, and ingest refuses (413) a webhook whose records a later stage could
not write, at exactly the limit the catalog gives."""

from __future__ import annotations

import json

import pytest
from ingest_shell_support import (
    call,
    hub_headers,
    make_app,
    telegram_headers,
    telegram_update,
)

from botstream.core.settings import Settings
from botstream.ingest.producer import ingest_producer_config
from botstream.ingest.sizes import SizeContract, accepted_event, quoting_reply
from botstream.schemas.codec import Codec
from botstream.schemas.topics import (
    CHAIN_HEADROOM_BYTES,
    batch_allowance,
    catalog,
    changelog_specs,
    producer_max_message_bytes,
    record_wire_bytes,
    spec_of,
    specs,
)
from botstream.streams.handlers import load_bot
from tests.pipeline import make_update
from tests.unit.streams.test_processor import build

SETTINGS = Settings.from_env({})
CODEC = Codec()
CONTRACT = SizeContract.from_catalog(SETTINGS)


def limit(suffix: str) -> int:
    return spec_of(SETTINGS, suffix).max_message_bytes


def test_every_topic_declares_its_largest_record_and_the_broker_takes_a_batch_of_it() -> None:
    for spec in specs(SETTINGS) + changelog_specs(SETTINGS):
        assert isinstance(spec.max_message_bytes, int) and spec.max_message_bytes > 0, spec.suffix
    for topic in catalog(SETTINGS):
        assert topic.spec is not None
        declared = topic.spec.max_message_bytes
        assert int(topic.configs["max.message.bytes"]) == declared + batch_allowance(declared)
        assert batch_allowance(declared) >= 61 + declared // 255 + 16  # batch header + lz4's worst case


def test_derived_topics_have_room_for_what_later_stages_add() -> None:
    assert limit("handoff") >= limit("updates")  # streams copies an Update there as it is
    for level in range(1, len(SETTINGS.retry_delays) + 1):
        assert limit(f"replies.retry.{level}") >= limit("replies") + CHAIN_HEADROOM_BYTES
    assert limit("replies.dlq") >= limit("replies") + CHAIN_HEADROOM_BYTES
    largest_other = max(s.max_message_bytes for s in specs(SETTINGS) + changelog_specs(SETTINGS)
                        if s.suffix != "quarantine")
    assert limit("quarantine") > largest_other  # the raw bytes of any record, plus origin and error
    assert CONTRACT == SizeContract(limit("updates"), limit("messages"), limit("replies"))


def test_ingest_producer_takes_exactly_the_updates_limit() -> None:
    config = ingest_producer_config(SETTINGS, bootstrap="x:1")
    assert config["message.max.bytes"] == limit("updates") == producer_max_message_bytes(SETTINGS, ["updates"])
    assert producer_max_message_bytes(SETTINGS, ["messages", "replies", "handoff"]) == limit("handoff")


async def test_the_estimates_match_the_records_streams_writes() -> None:
    """The derived records ingest measures are the ones streams really writes (echo bot: a reply that
    quotes the text, with its "echo: " prefix)."""
    proc, out, _ = build({"echo": load_bot("botstream.streams.examples.echo")})
    update = make_update("7", "x" * 50_000, update_id="u" * 40, thread_id="t-1",
                         platform_meta={"message_id": "9", "interaction_token": "tok"})
    await proc.process(update, 0, 10 ** 12)
    chat = "telegram:echo:7"
    [event] = [r for s, _, r in out if s == "messages" and r["payload"]["type"] == "UpdateAccepted"]
    [reply] = [r for s, _, r in out if s == "replies"]
    real_event = len(CODEC.encode("conversation_event", event))
    real_reply = len(CODEC.encode("reply", reply))
    assert len(CODEC.encode("conversation_event", accepted_event(update, chat))) >= real_event
    estimate = len(CODEC.encode("reply", quoting_reply(update, chat)))
    assert 0 <= estimate + len("echo: ") - real_reply <= 16


def test_check_fast_path_encodes_nothing_for_ordinary_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    update = make_update("7", "hello")
    value = CODEC.encode("update", update)
    encoded: list[str] = []
    monkeypatch.setattr(CONTRACT.codec, "encode", lambda name, *a, **k: encoded.append(name) or b"")
    CONTRACT.check(update, b"telegram:echo:7", value, [("correlation-id", b"c")])
    assert encoded == []


async def telegram_text(length: int) -> tuple[int, str | None, int]:
    """(status, refusal reason, records produced) for a Telegram update whose text has `length` bytes."""
    app, sink = make_app(sizes=CONTRACT)
    app.max_body_bytes = 4 << 20
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(),
                       body=telegram_update(update_id=2, text="a" * length))
    return reply.status, reply.json()["error"] if reply.status != 200 else None, len(sink.records)


async def test_text_at_the_limit_is_accepted_and_one_byte_more_is_413() -> None:
    low, high = 1, 1_200_000  # the largest accepted text length, by bisection
    while low < high:
        mid = (low + high + 1) // 2
        status, _, _ = await telegram_text(mid)
        low, high = (mid, high) if status == 200 else (low, mid - 1)
    assert await telegram_text(low) == (200, None, 1)
    assert await telegram_text(low + 1) == (413, "too_large_for_replies", 0)  # nothing produced
    # where the bound comes from: the accepted record's quoting reply is at the catalog's replies
    # limit, and one more byte of text puts it over
    app, sink = make_app(sizes=CONTRACT)
    app.max_body_bytes = 4 << 20
    await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(),
               body=telegram_update(update_id=2, text="a" * low))
    [record] = sink.records
    update = CODEC.decode("update", record.value)
    chat = record.key.decode()

    def reply_size(text: str) -> int:
        reply = quoting_reply({**update, "text": text}, chat)
        return record_wire_bytes(record.key, CODEC.encode("reply", reply), record.headers)

    assert reply_size("a" * low) <= limit("replies") < reply_size("a" * (low + 1))


async def test_an_update_over_the_updates_limit_is_413() -> None:
    app, sink = make_app(sizes=SizeContract(update_limit=2_000, event_limit=10**6, reply_limit=10**6))
    app.max_body_bytes = 1 << 20
    reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(),
                       body=telegram_update(text="a" * 1_000))
    assert (reply.status, reply.json()) == (413, {"error": "too_large_for_updates"})
    assert sink.records == []


async def test_a_whatsapp_batch_stores_its_raw_body_once() -> None:
    items = [{"from": f"49155{n:05d}", "id": f"wamid.{n}", "timestamp": "1700000000", "type": "text",
              "text": {"body": "x" * 3_000}} for n in range(300)]
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "biz", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1065"},
                                       "messages": items}}]}]}).encode()
    assert len(body) > 900_000
    app, sink = make_app(sizes=CONTRACT)
    app.max_body_bytes = 4 << 20
    reply = await call(app, "POST", "/webhooks/whatsapp/wa", headers=hub_headers(body, "wa-app-secret"), body=body)
    assert reply.status == 200 and len(sink.records) == 300
    total = sum(record_wire_bytes(r.key, r.value, r.headers) for r in sink.records)
    assert total < len(body) + 300 * 4_000  # one copy of the raw body (and the texts), not 300 copies
    updates = [CODEC.decode("update", r.value) for r in sink.records]
    assert updates[0]["raw"] == body
    assert all(u["raw"] == b"" and u["platform_meta"]["raw_update_id"] == "wamid.0" for u in updates[1:])
