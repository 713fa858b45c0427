"""Faults: 5xx and latency through the retry chain in chat order; a 429 that holds only its chat."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.integration.sinks.support import expected_by_chat, log_events, make_reply, texts_by_chat

pytestmark = pytest.mark.kafka

# A public channel: the sandbox files it under its group window (2 messages per 3 s here, less than
# the 1/s per chat our limiter grants a channel), so the platform refuses it now and then.
HOT = "@hotchannel"
WAVES = 12


def test_5xx_and_latency_all_delivered_in_order_and_a_429_holds_only_its_chat(rig) -> None:  # type: ignore[no-untyped-def]
    rig.sandbox.client.patch_config({
        "faults": {"ratio_5xx": 0.2, "latency": {"kind": "uniform", "min_ms": 5, "max_ms": 40}},
        "limits": {"telegram": {"group_per_window": 2, "group_window_seconds": 3}},
    })
    rig.write_bots(coalesce=False)  # one message per reply, so the sandbox log maps 1:1 to replies
    worker = rig.start_sinks(BOTSTREAM_MAX_ATTEMPTS="12")
    rig.wait_ready("sinks", worker)
    others = [str(2000 + c) for c in range(20)]
    replies: list[dict] = []

    def produce_waves() -> None:  # every chat gets a reply each second, the hot group a burst first
        for wave in range(WAVES):
            batch = [make_reply(c, f"{c} #{wave}", wave) for c in others]
            hot = range(3) if wave == 0 else [wave + 2]
            batch += [make_reply(HOT, f"hot #{i}", i, chat_type="channel") for i in hot]
            replies.extend(batch)
            rig.produce(batch)
            time.sleep(1.0)

    results = rig.reader("deliveries", "delivery_result")
    producer = threading.Thread(target=produce_waves)
    started = time.monotonic()
    producer.start()
    producer.join()
    got = results.wait_for(len(replies), timeout=150, alive=worker.alive)
    took_s = time.monotonic() - started
    assert worker.alive(), worker.output()[-3000:]
    outcomes = Counter(r["outcome"] for r in got)
    assert outcomes == {"delivered": len(replies)}, (outcomes, [r for r in got if r["outcome"] != "delivered"][:3])
    assert {r["reply_id"] for r in got} == {r["reply_id"] for r in replies}
    stats = rig.sandbox.client.stats()
    delivered = rig.sandbox.client.deliveries(platform="telegram")
    assert texts_by_chat(delivered) == expected_by_chat(replies)  # all of them, each chat in order
    assert stats["order_violations"] == 0 and stats["duplicate_seqs"] == 0
    assert stats["faults"].get("error_5xx", 0) > 0
    retried = {level: len(rig.reader(f"replies.retry.{level}", "reply").wait_for(10**6, timeout=1))
               for level in (1, 2, 3)}
    assert retried[1] > 0, retried
    # Only the hot group was ever refused for rate, and only by its group window.
    assert stats["rate_limited"] == {"telegram": {"group": stats["rate_limited_total"]}}, stats["rate_limited"]
    hot_key = f"telegram:tg:{HOT}"
    pauses = [(e["ts"] * 1000, e["ts"] * 1000 + e["delay_s"] * 1000)
              for e in log_events(worker.output(), "rate limited by the platform") if e.get("chat_key") == hot_key]
    assert pauses and stats["rate_limited_total"] >= len(pauses)
    other_arrivals = [d["arrival_ms"] for d in delivered if d["chat"] != HOT]
    first, last = min(other_arrivals), max(other_arrivals)
    pauses = [(max(a, first), min(b, last)) for a, b in pauses if b > first and a < last]  # while others ran
    during = sum(1 for t in other_arrivals if any(a <= t < b for a, b in pauses))
    paused_s = sum(b - a for a, b in pauses) / 1000
    # Pace of the others = latency (produced -> delivered) of their first-try deliveries.
    first_try = [(r["at_ms"], r["latency_ms"]) for r in got
                 if r["chat_key"] != hot_key and r["attempts"] == 1 and r["latency_ms"] is not None]
    lat_in = sorted(lat for at, lat in first_try if any(a <= at < b for a, b in pauses))
    lat_out = sorted(lat for at, lat in first_try if not any(a <= at < b for a, b in pauses))
    print(f"\nfaults: {len(replies)} replies delivered {took_s:.1f}s after the first was produced, "
          f"{stats['faults'].get('error_5xx', 0)} injected 5xx, "
          f"retry records per level {retried}, all delivered in chat order; "
          f"hot group: {stats['rate_limited_total']} 429s, paused {paused_s:.1f}s while the others were busy; "
          f"meanwhile the other 20 chats "
          f"delivered {during} messages; their first-try latency p50 {_p50(lat_in)} ms during its pauses vs "
          f"{_p50(lat_out)} ms outside them")
    assert during > 0  # the others kept going while the hot chat waited


def _p50(values: list[int]) -> int | str:
    return values[len(values) // 2] if values else "-"
