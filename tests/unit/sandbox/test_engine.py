"""The engine's shared steps: check order, ledger, order violations, reset, runtime config."""

from __future__ import annotations

import json
from collections.abc import Callable

from botstream.sandbox.config import SandboxConfig
from botstream.sandbox.control import handle_control
from botstream.sandbox.engine import SandboxEngine
from botstream.sandbox.http import Request
from botstream.sandbox.ledger import DeliveryLedger
from tests.unit.sandbox.driver import Driver

SEND = "/bot1:x/sendMessage"


def send(d: Driver, chat: int, text: str = "m", seq: int | None = None) -> int:
    headers = {"X-Botstream-Seq": str(seq)} if seq is not None else {}
    return d.post(SEND, {"chat_id": chat, "text": text}, headers=headers).reply.status


def test_unknown_path_is_404(driver: Driver) -> None:
    assert driver.post("/nothing/here", {}).reply.status == 404


def test_order_violations_and_duplicates_per_chat(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(SandboxConfig().with_limits_disabled())
    for seq in (1, 2, 4, 3, 4, 5):
        assert send(d, 10, seq=seq) == 200
    assert send(d, 11, seq=1) == 200  # another chat has its own sequence
    send(d, 10)  # no sequence: not judged
    ledger = d.engine.ledger
    assert (ledger.order_violations, ledger.duplicate_seqs) == (1, 1)
    assert list(ledger.violations) == [
        {"platform": "telegram", "bot": "1", "chat": "10", "seq": 3, "after_seq": 4, "index": 3}
    ]
    assert [x.seq for x in ledger.query(chat="10")] == [1, 2, 4, 3, 4, 5, None]
    assert [x.index for x in ledger.query()] == list(range(8))


def test_forbidden_chat_is_refused_before_limits_spend_budget(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"forbidden_chats": ["5"]})
    for _ in range(10):
        assert send(d, 5) == 403
    assert d.engine.stats.rate_limited == {}
    assert [send(d, 6) for _ in range(3)] == [200, 200, 200]


def test_fault_before_delivery_records_nothing(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"ratio_5xx": 1.0, "statuses_5xx": [500]})
    assert send(d, 1) == 500
    assert len(d.engine.ledger) == 0 and d.engine.stats.faults["error_5xx"] == 1


def test_fault_after_delivery_records_but_loses_the_response(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"ratio_5xx": 1.0, "statuses_5xx": [500], "after_delivery": True})
    assert send(d, 1, "kept") == 500
    assert [x.text for x in d.engine.ledger.query()] == ["kept"]


def test_timeout_and_reset_outcomes(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"timeout_ratio": 1.0, "timeout_hold_seconds": 3.0})
    out = d.post(SEND, {"chat_id": 1, "text": "x"})
    assert out.hold == 3.0 and out.reply.status == 504 and not out.reset
    d.engine.update_config(d.engine.config.merged({"faults": {"timeout_ratio": 0, "reset_ratio": 1.0}}))
    assert d.post(SEND, {"chat_id": 1, "text": "x"}).reset


def test_random_faults_can_be_limited_to_platforms(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"ratio_5xx": 1.0, "platforms": ["slack"]})
    assert send(d, 1) == 200


def test_latency_is_an_instruction_not_a_sleep(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"latency": {"kind": "fixed", "ms": 1500}})
    out = d.post(SEND, {"chat_id": 1, "text": "x"})
    assert out.reply.status == 200 and out.delay == 1.5
    assert d.engine.stats.faults["latency"] == 1


def test_reset_clears_everything_and_replays_faults(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(SandboxConfig(seed=4).merged({"faults": {"ratio_5xx": 0.5}}))
    first = [send(d, 1 + i) for i in range(20)]
    d.engine.reset()
    assert len(d.engine.ledger) == 0 and d.engine.stats.snapshot()["requests"] == {}
    assert [send(d, 1 + i) for i in range(20)] == first
    assert 500 in first and 200 in first


def test_config_update_resets_limits_only_when_they_change(make_driver: Callable[..., Driver]) -> None:
    d = make_driver()
    for _ in range(3):
        send(d, 1)
    assert send(d, 1) == 429
    d.engine.update_config(d.engine.config.merged({"faults": {"latency": {"kind": "fixed", "ms": 1}}}))
    assert send(d, 1) == 429  # limiter state survives an unrelated change
    d.engine.update_config(d.engine.config.merged({"limits": {"telegram": {"per_chat_burst": 5}}}))
    assert send(d, 1) == 200


def test_delivery_log_is_bounded_but_order_tracking_is_not(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(SandboxConfig(delivery_log_limit=3).with_limits_disabled())
    for seq in (1, 2, 3, 4, 5):
        send(d, 1, seq=seq)
    send(d, 1, seq=1)
    assert [x.seq for x in d.engine.ledger.query()] == [4, 5, 1]
    assert d.engine.ledger.order_violations == 1


AWKWARD = 'quote " backslash \\ newline \n tab \t nul \x00 é 😀 \u2028 </script>'


def test_templated_success_bodies_escape_any_text(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(SandboxConfig().with_limits_disabled())
    tg = d.post(SEND, {"chat_id": -100, "text": AWKWARD}).reply.json()
    assert tg["result"]["text"] == AWKWARD and tg["result"]["chat"]["type"] == "group"
    slack = d.post(
        "/api/chat.postMessage",
        {"channel": 'C"1', "text": AWKWARD},
        headers={"authorization": "Bearer xoxb-1"},
    ).reply.json()
    assert (slack["channel"], slack["message"]["text"]) == ('C"1', AWKWARD)
    discord = d.post(
        "/api/v10/channels/5/messages", {"content": AWKWARD}, headers={"authorization": "Bot a.b.c"}
    ).reply.json()
    assert discord["content"] == AWKWARD and discord["channel_id"] == "5"
    wa = d.post(
        "/v21.0/9/messages",
        {"messaging_product": "whatsapp", "to": '+1 "555"', "text": {"body": AWKWARD}},
        headers={"authorization": "Bearer t"},
    ).reply.json()
    assert wa["contacts"] == [{"input": '+1 "555"', "wa_id": "1555"}]
    assert [x.text for x in d.engine.ledger.query()] == [AWKWARD] * 4


def test_deliveries_since_reads_only_the_newest_arrivals() -> None:
    ledger = DeliveryLedger(limit=4)
    for i, at in enumerate((100, 200, 300, 300, 400, 500)):
        ledger.record("telegram", "1", str(i % 2), "sendMessage", f"m{i}", str(i), None, at)
    assert [d.index for d in ledger.query()] == [2, 3, 4, 5]  # bounded: the oldest two are gone
    assert [d.index for d in ledger.query(since_ms=300)] == [2, 3, 4, 5]
    assert [d.index for d in ledger.query(since_ms=301)] == [4, 5]
    assert [d.index for d in ledger.query(chat="1", since_ms=301)] == [5]
    assert ledger.query(since_ms=501) == []

    engine = SandboxEngine(SandboxConfig())
    engine.ledger = ledger
    reply = handle_control(engine, Request("GET", "/_sandbox/deliveries", query="since_ms=400"), None)
    assert reply.status == 200
    assert [d["index"] for d in json.loads(reply.body)["deliveries"]] == [4, 5]
