"""Undecodable records on `replies` and on a retry topic: quarantined with their origin, and the
worker goes on delivering everything else, each chat in order."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.sinks.support import chat_replies, expected_by_chat, metric_sum, scrape, texts_by_chat
from tests.pipeline import producer

pytestmark = pytest.mark.kafka


def produce_raw(rig: Any, records: list[tuple[str, bytes | None, bytes]]) -> list[tuple[str, int, int]]:
    """(topic, key, value) as they are, no codec; returns where each landed (topic, partition, offset)."""
    p = producer(rig.bootstrap)
    landed: list[tuple[str, int, int]] = []

    def on_delivery(err: Any, msg: Any) -> None:
        assert err is None, err
        landed.append((msg.topic(), msg.partition(), msg.offset()))

    for topic, key, value in records:
        p.produce(rig.settings.topic(topic), key=key, value=value, on_delivery=on_delivery)
    assert p.flush(60) == 0
    return landed


def test_undecodable_records_are_quarantined_with_their_origin_and_the_rest_flows(rig) -> None:  # type: ignore[no-untyped-def]
    rig.write_bots(coalesce=False)
    worker = rig.start_sinks()
    rig.wait_ready("sinks", worker)
    results = rig.reader("deliveries", "delivery_result")
    quarantine = rig.reader("quarantine", "quarantine")
    first = chat_replies([str(3000 + c) for c in range(5)], 2)
    rig.produce(first)
    landed = produce_raw(rig, [
        ("replies", b"telegram:tg:3000", b"\x00not an avro record"),  # a chat with replies before and after
        ("replies", None, b"{\"json\": \"from somebody else\"}"),  # no key at all
        ("replies.retry.1", b"telegram:tg:3001", b"\xc3\x01garbage"),  # a retry topic: not its chat's live hop
    ])
    later = chat_replies([str(3000 + c) for c in range(5)], 2)
    for r in later:  # after the first two of each chat
        r["chat_seq"] += 2 * 1000
        r["text"] = r["text"].replace("#", "later #")
    rig.produce(later)
    replies = first + later
    got = results.wait_for(len(replies), timeout=90, alive=worker.alive)
    assert worker.alive(), worker.output()[-3000:]
    assert Counter(r["outcome"] for r in got) == {"delivered": len(replies)}
    delivered = rig.sandbox.client.deliveries(platform="telegram")
    assert texts_by_chat(delivered) == expected_by_chat(replies)
    assert rig.sandbox.client.stats()["order_violations"] == 0

    records = quarantine.wait_for(len(landed), timeout=30, alive=worker.alive, settle=1.0)
    assert len(records) == len(landed), records
    origins = {(q["origin_topic"], q["origin_partition"], q["origin_offset"]) for q in records}
    assert origins == set(landed)
    by_topic = {q["origin_topic"]: q for q in records}
    assert all(q["stage"] == "sinks" and q["error"] for q in records)
    retry = by_topic[rig.settings.topic("replies.retry.1")]
    assert retry["raw"] == b"\xc3\x01garbage" and retry["origin_key"] == b"telegram:tg:3001"
    m = scrape(rig.web_ports["sinks"])
    assert metric_sum(m, "botstream_sinks_quarantined_total") == len(landed)
