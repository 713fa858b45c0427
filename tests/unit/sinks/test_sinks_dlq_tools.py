"""The DLQ's records and tooling without a broker: what a dead letter carries, filters, markers, replays."""

from __future__ import annotations

from typing import Any

import pytest
from sinks_factories import make_reply

from botstream.schemas.codec import Codec
from botstream.schemas.headers import DLQ_OUTCOME, DLQ_REASON, REPLAYED, RETRY_ATTEMPT, RETRY_ORIGIN
from botstream.sinks.dlq import DlqFilter, collect, parse_since, replay_reply
from botstream.sinks.results import dead_letter, delivery_result
from botstream.sinks.retry import decode_retry_headers

CODEC = Codec()
NOW = 1_700_000_000_000


def dlq_message(partition: int, offset: int, reply: dict[str, Any], reason: str = "permanent failure: http 403",
                at_ms: int = NOW) -> tuple[int, int, int, bytes, bytes, dict[str, str]]:
    record, headers = dead_letter(reply, reason, "failed_permanent", at_ms=at_ms, origin="t/0@5")
    return (partition, offset, at_ms, reply["chat_key"].encode(), CODEC.encode("reply", record),
            {k: v.decode() for k, v in headers})


def test_a_dead_letter_keeps_the_reply_and_says_why_in_value_and_headers() -> None:
    reply = make_reply(attempt=3, first_error="http 502: Bad Gateway")
    record, headers = dead_letter(reply, "gave up after 4 attempts: http 503", "dead_lettered", at_ms=NOW,
                                  origin="bs.replies/2@17")
    assert record["last_error"] == "gave up after 4 attempts: http 503"
    assert record["first_error"] == "http 502: Bad Gateway" and record["text"] == reply["text"]
    h = dict(headers)
    assert h[DLQ_REASON] == b"gave up after 4 attempts: http 503" and h[DLQ_OUTCOME] == b"dead_lettered"
    retry = decode_retry_headers(headers)
    assert retry.attempt == 3 and retry.origin == "bs.replies/2@17"
    assert h[RETRY_ATTEMPT] == b"3" and h[RETRY_ORIGIN] == b"bs.replies/2@17"
    CODEC.encode("reply", record)  # still a valid Reply


def test_delivery_results_fit_the_schema_and_carry_latency_only_when_delivered() -> None:
    reply = make_reply(update_received_at_ms=NOW - 250)
    ok = delivery_result(reply, "delivered", at_ms=NOW, attempts=2, message_id="77", http_status=200)
    failed = delivery_result(reply, "failed_permanent", at_ms=NOW, attempts=1, http_status=403, error="x" * 5000)
    assert ok["latency_ms"] == 250 and failed["latency_ms"] is None and len(failed["error"]) == 1000
    for result in (ok, failed):
        assert CODEC.decode("delivery_result", CODEC.encode("delivery_result", result)) == result


def test_markers_hide_replayed_records_whatever_the_filter() -> None:
    a = make_reply(chat_id="1", chat_key="telegram:b1:1", reply_id="a")
    b = make_reply(chat_id="2", chat_key="telegram:b1:2", reply_id="b")
    marker = (0, 9, NOW, b"telegram:b1:1", None, {REPLAYED: "0@3"})
    records = collect([dlq_message(0, 3, a), dlq_message(1, 4, b), marker,
                       (1, 5, NOW, b"k", b"garbage", {})], CODEC)
    assert [(r.position, r.replayed) for r in records] == [("0@3", True), ("1@4", False), ("1@5", False)]
    assert records[0].reply == {**a, "last_error": "permanent failure: http 403",
                                "first_error": "permanent failure: http 403"}
    assert records[2].reply is None and records[2].error is not None and records[2].error.startswith("undecodable")
    assert records[1].summary()["reason"] == "permanent failure: http 403"


@pytest.mark.parametrize(("flt", "expected"), [
    (DlqFilter(), ["0@1", "0@2", "0@3"]),
    (DlqFilter(bot="b2"), ["0@3"]),
    (DlqFilter(chat="2"), ["0@2"]),
    (DlqFilter(chat="telegram:b1:1"), ["0@1"]),
    (DlqFilter(reason="TIMEOUT"), ["0@2"]),
    (DlqFilter(since_ms=NOW - 500), ["0@2", "0@3"]),
    (DlqFilter(reply_id="c"), ["0@3"]),
])
def test_filters(flt: DlqFilter, expected: list[str]) -> None:
    records = collect([
        dlq_message(0, 1, make_reply(chat_id="1", chat_key="telegram:b1:1", reply_id="a"), at_ms=NOW - 1000),
        dlq_message(0, 2, make_reply(chat_id="2", chat_key="telegram:b1:2", reply_id="b"), "gave up: timeout"),
        dlq_message(0, 3, make_reply(bot_id="b2", chat_key="telegram:b2:42", reply_id="c")),
    ], CODEC)
    assert [r.position for r in records if flt.matches(r)] == expected


def test_parse_since() -> None:
    assert parse_since("90s", NOW) == NOW - 90_000
    assert parse_since("2h", NOW) == NOW - 7_200_000
    assert parse_since("1.5d", NOW) == NOW - 129_600_000
    assert parse_since(str(NOW), 0) == NOW
    assert parse_since("1700000000", 0) == NOW
    assert parse_since("2023-11-14T22:13:20Z", 0) == NOW
    with pytest.raises(ValueError, match="cannot read"):
        parse_since("yesterday", NOW)


def test_a_replayed_reply_starts_the_chain_afresh_and_keeps_its_history() -> None:
    reply = make_reply(attempt=5, not_before_ms=NOW, first_error="a", last_error="b")
    again = replay_reply(reply)
    assert again["attempt"] == 0 and again["not_before_ms"] == 0
    assert again["first_error"] == "a" and again["last_error"] == "b" and again["reply_id"] == reply["reply_id"]
