"""The streams worker as a real process on the real broker: order, dedupe, crashes, rebalance, replay."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from confluent_kafka import Producer

from botstream.core.kafka import producer_config
from botstream.core.partitioning import partition_for
from botstream.streams.replay import conversations_changelog, fold_messages
from tests.pipeline import TopicReader, make_update, produce_updates
from tests.processes import wait_until

pytestmark = pytest.mark.kafka


def interleaved(chats: int, per_chat: int, bot_id: str = "echo") -> list[dict[str, Any]]:
    return [make_update(f"c{c}", f"m{i}", bot_id=bot_id) for i in range(per_chat) for c in range(chats)]


def by_chat(replies: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for r in replies:
        out[r["chat_key"]].append(r["text"])
    return out


def test_200_chats_in_order_and_redeliveries_dropped(pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = pipeline.start_streams()
    updates = interleaved(200, 20)
    redeliveries = [dict(u, correlation_id="again") for u in updates[::50]]
    produce_updates(pipeline.bootstrap, pipeline.settings.topic("updates"), updates + redeliveries)
    replies = pipeline.reader("replies", "reply").wait_for(4000, timeout=240, alive=worker.alive, settle=2)
    assert worker.alive(), worker.output()[-3000:]
    assert len(replies) == 4000
    chats = by_chat(replies)
    assert len(chats) == 200
    for texts in chats.values():
        assert texts == [f"echo: m{i}" for i in range(20)]
    seqs: dict[str, list[int]] = defaultdict(list)
    for r in replies:
        seqs[r["chat_key"]].append(r["chat_seq"])
    assert all(s == sorted(s) for s in seqs.values())


def test_kill9_then_recovery_from_changelogs_on_a_fresh_data_dir(pipeline) -> None:  # type: ignore[no-untyped-def]
    topic = pipeline.settings.topic("updates")
    updates = interleaved(100, 20)
    first = pipeline.start_streams("streams-a")
    reader = pipeline.reader("replies", "reply")
    produce_updates(pipeline.bootstrap, topic, updates)
    reader.wait_for(700, timeout=120, alive=first.alive)
    first.kill9()
    # A new worker with an empty data dir: its tables must come back from their changelogs.
    second = pipeline.start_streams("streams-b")
    reader.wait_for(2000, timeout=240, alive=second.alive)
    # Redeliveries of updates handled before the crash are still recognised after recovery.
    produce_updates(pipeline.bootstrap, topic, [dict(u, correlation_id="late") for u in updates[:50]])
    marker = make_update("c0", "marker")
    produce_updates(pipeline.bootstrap, topic, [marker])
    wait_until(lambda: reader.poll() >= 0 and any(v["text"] == "echo: marker" for _, v, _ in reader.items),
               timeout=120, what="marker reply")
    assert second.alive(), second.output()[-3000:]
    replies = [v for _, v, _ in reader.items]
    contents: dict[str, set[str]] = defaultdict(set)
    for r in replies:
        contents[r["reply_id"]].add(r["text"])
    assert all(len(c) == 1 for c in contents.values()), "a reply id appeared with two different contents"
    seen_texts = Counter((r["chat_key"], r["text"]) for r in replies)
    for u in updates:
        assert seen_texts[(f"telegram:echo:{u['chat_id']}", f"echo: {u['text']}")] >= 1
    duplicates = sum(n - 1 for n in Counter(r["reply_id"] for r in replies).values() if n > 1)
    print(f"\nkill -9 recovery: {len(updates)} updates, {len(replies) - 1} replies, "
          f"{duplicates} duplicate reply ids (reprocessed after the crash; the sink ledger drops them)")
    # The 50 late redeliveries produced nothing new: per chat, order holds and m0..m19 appear once each.
    chats = defaultdict(list)
    for r in replies:
        if r["chat_key"] == "telegram:echo:c0" and r["text"] != "echo: marker":
            chats[r["chat_key"]].append(r["text"])
    first_seen = list(dict.fromkeys(chats["telegram:echo:c0"]))
    assert first_seen == [f"echo: m{i}" for i in range(20)]


def test_second_worker_joining_mid_stream_keeps_order_and_dedupe(pipeline) -> None:  # type: ignore[no-untyped-def]
    topic = pipeline.settings.topic("updates")
    updates = interleaved(60, 20)
    a = pipeline.start_streams("streams-a")
    reader = pipeline.reader("replies", "reply")
    produce_updates(pipeline.bootstrap, topic, updates[:600])
    reader.wait_for(200, timeout=120, alive=a.alive)
    b = pipeline.start_streams("streams-b")
    time.sleep(2)
    produce_updates(pipeline.bootstrap, topic, updates[600:] + [dict(u, correlation_id="r") for u in updates[:100]])
    reader.wait_for(1200, timeout=240, alive=lambda: a.alive() and b.alive(), settle=5)
    assert a.alive() and b.alive()
    first_seen: dict[str, list[str]] = defaultdict(list)
    for _, r, _ in reader.items:
        if r["text"] not in first_seen[r["chat_key"]]:
            first_seen[r["chat_key"]].append(r["text"])
    for texts in first_seen.values():
        assert texts == [f"echo: m{i}" for i in range(20)]
    dupes = len(reader.items) - 1200
    print(f"\nrebalance: {dupes} replies re-emitted around the rebalance (same ids; sinks skip them)")
    assert b.output().count("Traceback") == 0, b.output()[-3000:]


def test_slow_handler_holds_only_its_own_chat(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    p = make_pipeline(partitions=1, handler="tests.integration.apps.test_bot")
    worker = p.start_streams(BOTSTREAM_HANDLER_TIMEOUT_S="4")
    reader = p.reader("replies", "reply")
    slow = make_update("slow-chat", "/slow", kind="command")
    others = [make_update(f"o{i}", f"x{i}") for i in range(30)]
    sent = time.monotonic()
    produce_updates(p.bootstrap, p.settings.topic("updates"), [slow, *others])
    reader.wait_for(31, timeout=120, alive=worker.alive)
    arrival = {v["chat_key"]: (m.offset(), m.timestamp()[1]) for _, v, m in reader.items}
    fallback = [v for _, v, _ in reader.items if v["chat_key"] == "telegram:echo:slow-chat"]
    assert [r["text"] for r in fallback] == ["fallback: handler failed"]
    slow_offset = arrival["telegram:echo:slow-chat"][0]
    assert all(arrival[f"telegram:echo:o{i}"][0] < slow_offset for i in range(30))
    lag = max(arrival[f"telegram:echo:o{i}"][1] for i in range(30)) - min(a[1] for a in arrival.values())
    print(f"\nslow chat: the other 30 chats (same partition) were answered within {lag} ms of the first reply; "
          f"the slow chat's fallback came after its 4 s timeout ({time.monotonic() - sent:.1f} s after sending)")


def test_replay_rebuilds_the_live_conversation_state(pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = pipeline.start_streams()
    topic = pipeline.settings.topic("updates")
    faq = [make_update(f"f{c}", t, bot_id="faq", platform="slack", kind="command" if t.startswith("/") else "message")
           for c in range(10) for t in ("/start", "price?", "/digest on", "/human", "hello")]
    produce_updates(pipeline.bootstrap, topic, faq + interleaved(20, 3))
    pipeline.reader("replies", "reply").wait_for(10 * 4 + 60, timeout=120, alive=worker.alive, settle=2)
    assert worker.terminate() in (0, -15)
    rebuilt, _, folded = fold_messages(pipeline.settings, pipeline.bootstrap)
    live = {}
    changelog = TopicReader(pipeline.bootstrap, conversations_changelog(pipeline.settings), None)
    changelog.wait_for(10**9, timeout=8)
    for key, value, _ in changelog.items:
        live[key.decode()] = json.loads(value)
    changelog.close()
    assert len(rebuilt) == 30 and folded > 0
    assert rebuilt == live
    assert rebuilt["slack:faq:f0"]["handoff"] is True and rebuilt["slack:faq:f0"]["bot_state"] == {
        "started": True, "digest": True}
    out = subprocess.run([sys.executable, "-m", "botstream", "replay", "--from", "beginning"],
                         env=pipeline.env("replay"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["chats"] == 30


def test_undecodable_records_are_quarantined_and_the_agent_goes_on(pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = pipeline.start_streams()
    topic = pipeline.settings.topic("updates")
    producer = Producer(producer_config(pipeline.settings, bootstrap=pipeline.bootstrap))
    producer.produce(topic, key=b"telegram:echo:q1", value=b"\xc3\x01garbage-not-avro")
    producer.produce(topic, key=b"telegram:echo:q1", value=b"{\"json\": true}")
    producer.flush(30)
    produce_updates(pipeline.bootstrap, topic, [make_update("q1", "after")])
    replies = pipeline.reader("replies", "reply").wait_for(1, timeout=90, alive=worker.alive)
    assert [r["text"] for r in replies] == ["echo: after"]
    quarantined = pipeline.reader("quarantine", "quarantine").wait_for(2, timeout=30)
    assert {q["origin_topic"] for q in quarantined} == {topic}
    assert sorted(q["raw"] for q in quarantined) == sorted([b"\xc3\x01garbage-not-avro", b"{\"json\": true}"])
    assert all(q["stage"] == "streams" and q["error"] for q in quarantined)


def test_handoff_silences_the_bot_until_released(pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = pipeline.start_streams()
    topic = pipeline.settings.topic("updates")
    mk = lambda text: make_update("h1", text, bot_id="faq", platform="slack",  # noqa: E731
                                  kind="command" if text.startswith("/") else "message")
    produce_updates(pipeline.bootstrap, topic, [mk("/human"), mk("I need help")])
    handoff = pipeline.reader("handoff", "update").wait_for(1, timeout=90, alive=worker.alive)
    assert [u["text"] for u in handoff] == ["I need help"]
    out = subprocess.run([sys.executable, "-m", "botstream", "handoff", "release", "slack:faq:h1"],
                         env=pipeline.env("cli"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    produce_updates(pipeline.bootstrap, topic, [mk("price?")])
    replies = pipeline.reader("replies", "reply").wait_for(2, timeout=90, alive=worker.alive, settle=1)
    assert [r["text"] for r in replies] == ["OK — a person will answer here shortly.", "botstream is free and open source."]


def test_interval_job_runs_and_reaches_subscribed_chats_in_order(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    p = make_pipeline(partitions=2, handler="tests.integration.apps.test_bot")
    worker = p.start_streams()
    produce_updates(p.bootstrap, p.settings.topic("updates"), [make_update("j1", "/sub", kind="command"),
                                                               make_update("j2", "just chatting")])
    reader = p.reader("replies", "reply")
    wait_until(lambda: reader.poll() >= 0 and sum(v["text"] == "tick" for _, v, _ in reader.items) >= 2,
               timeout=90, what="two ticks")
    assert worker.alive()
    j1 = [v for _, v, _ in reader.items if v["chat_id"] == "j1"]
    assert j1[0]["text"] == "subscribed" and {v["text"] for v in j1[1:]} == {"tick"}
    assert [v["chat_seq"] for v in j1] == sorted(v["chat_seq"] for v in j1)
    # the job's predicate keeps the subscribed chats: j2 is the bot's too, and gets no tick
    assert [v["text"] for _, v, _ in reader.items if v["chat_id"] == "j2"] == ["echo: just chatting"]


def test_jobs_reach_the_chats_of_every_worker(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    """Each worker runs the job over the partitions it holds: with two workers, every subscribed chat
    gets its ticks (a leader-only job would reach only the leader's chats)."""
    p = make_pipeline(partitions=4, handler="tests.integration.apps.test_bot")
    a = p.start_streams("streams-a")
    wait_until(lambda: p.owned_partitions("streams-a") == 4, timeout=90, interval=0.5, what="streams-a holds all")
    b = p.start_streams("streams-b")
    wait_until(lambda: p.owned_partitions("streams-a") == 2 and p.owned_partitions("streams-b") == 2,
               timeout=120, interval=0.5, what="two partitions each")
    per_partition: dict[int, list[str]] = defaultdict(list)
    for i in range(200):  # three chats on every partition, so both workers hold some
        part = per_partition[partition_for(f"telegram:echo:j{i}".encode(), 4)]
        if len(part) < 3:
            part.append(f"j{i}")
    chats = [c for part in per_partition.values() for c in part]
    assert len(chats) == 12
    produce_updates(p.bootstrap, p.settings.topic("updates"), [make_update(c, "/sub", kind="command") for c in chats])
    reader = p.reader("replies", "reply")

    def ticks() -> Counter[str]:
        reader.poll()
        return Counter(v["chat_id"] for _, v, _ in reader.items if v["text"] == "tick")

    wait_until(lambda: all(ticks()[c] >= 2 for c in chats), timeout=150, interval=0.5,
               what="two ticks in every chat")
    assert a.alive() and b.alive(), (a.output()[-2000:], b.output()[-2000:])
    assert {v["chat_id"] for _, v, _ in reader.items if v["text"] == "subscribed"} == set(chats)
