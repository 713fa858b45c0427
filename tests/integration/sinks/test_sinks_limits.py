"""Delivery at the platform's limits: every reply out, in chat order, no 429 — and the budget shared."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.integration.sinks.support import chat_replies, expected_by_chat, metric_sum, scrape, texts_by_chat

pytestmark = pytest.mark.kafka


def max_in_window(arrivals_ms: list[int], window_ms: int = 1000) -> int:
    arrivals_ms = sorted(arrivals_ms)
    best = start = 0
    for end, t in enumerate(arrivals_ms):
        while arrivals_ms[start] <= t - window_ms:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_many_chats_at_telegram_limits_in_order_without_429(rig) -> None:  # type: ignore[no-untyped-def]
    rig.write_bots(coalesce=False)  # one message per reply: the limits are what is tested here
    worker = rig.start_sinks()
    results = rig.reader("deliveries", "delivery_result")
    replies = chat_replies([str(1000 + c) for c in range(60)], 5)  # 300 replies: past every chat's burst
    rig.produce(replies)
    got = results.wait_for(len(replies), timeout=120, alive=worker.alive)
    assert worker.alive(), worker.output()[-3000:]
    outcomes = Counter(r["outcome"] for r in got)
    assert outcomes == {"delivered": len(replies)}, outcomes
    assert {r["reply_id"] for r in got} == {r["reply_id"] for r in replies}
    stats = rig.sandbox.client.stats()
    delivered = rig.sandbox.client.deliveries(platform="telegram")
    assert texts_by_chat(delivered) == expected_by_chat(replies)  # every text, each chat in order
    assert stats["order_violations"] == 0 and stats["duplicate_seqs"] == 0
    assert stats["rate_limited_total"] == 0, stats["rate_limited"]
    arrivals = [d["arrival_ms"] for d in delivered]
    span_s = (max(arrivals) - min(arrivals)) / 1000
    m = scrape(rig.web_ports["sinks"])
    waited = metric_sum(m, "botstream_sinks_rate_limit_wait_seconds_sum")
    print(f"\nlimits: {len(replies)} replies to 60 chats in {span_s:.1f}s "
          f"({waited:.0f} chat-seconds spent waiting for budget), "
          f"{len(delivered) / max(span_s, 1e-9):.1f} msg/s (bot limit 30/s, busiest second "
          f"{max_in_window(arrivals)}), 429s served: {stats['rate_limited_total']}")


def test_two_workers_share_one_bot_budget(rig) -> None:  # type: ignore[no-untyped-def]
    rate = 20
    rig.sandbox.client.patch_config({"limits": {"telegram": {"per_bot_per_second": rate, "per_bot_burst": rate}}})
    rig.write_bots(tg_limits=f"global_per_second = {rate}")
    a = rig.start_sinks("sinks-a")
    rig.wait_ready("sinks-a", a)
    b = rig.start_sinks("sinks-b")
    half = rig.settings.partitions // 2
    rig.wait_ready("sinks-a", a, owned=half)
    rig.wait_ready("sinks-b", b, owned=half)
    results = rig.reader("deliveries", "delivery_result")
    replies = chat_replies([str(5000 + c) for c in range(240)], 1)  # only the bot-wide limit binds
    started = time.monotonic()
    rig.produce(replies)
    got = results.wait_for(len(replies), timeout=120, alive=lambda: a.alive() and b.alive())
    assert a.alive() and b.alive(), (a.output()[-2000:], b.output()[-2000:])
    assert Counter(r["outcome"] for r in got) == {"delivered": len(replies)}
    stats = rig.sandbox.client.stats()
    delivered = rig.sandbox.client.deliveries(platform="telegram")
    assert len(delivered) == len(replies) and stats["order_violations"] == 0
    assert stats["rate_limited_total"] == 0, stats["rate_limited"]
    arrivals = [d["arrival_ms"] for d in delivered]
    span_s = (max(arrivals) - min(arrivals)) / 1000
    shares = [metric_sum(scrape(rig.web_ports[n]), "botstream_sinks_budget_share", bot="tg") for n in ("sinks-a", "sinks-b")]
    print(f"\ntwo workers, one bot limited to {rate}/s: shares {shares[0]:.2f} + {shares[1]:.2f}; "
          f"{len(replies)} replies in {span_s:.1f}s = {len(replies) / max(span_s, 1e-9):.1f}/s combined, "
          f"busiest second {max_in_window(arrivals)}, 429s {stats['rate_limited_total']} "
          f"(all done {time.monotonic() - started:.1f}s after producing)")
