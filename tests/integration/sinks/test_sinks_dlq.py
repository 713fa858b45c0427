"""A chat that refuses for good: its replies go to the DLQ with the reason, and `botstream dlq replay`
delivers them — once — after the fault is fixed. A neighbouring chat shows coalescing meanwhile."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.integration.sinks.support import chat_replies, texts_by_chat
from tests.processes import wait_until

pytestmark = pytest.mark.kafka


def test_permanent_403_dead_letters_then_replay_delivers_once(rig) -> None:  # type: ignore[no-untyped-def]
    rig.sandbox.client.patch_config({"faults": {"forbidden_chats": ["777"]}})
    worker = rig.start_sinks()
    blocked = chat_replies(["777"], 3)
    chatty = chat_replies(["778"], 6)  # past its burst of 3: the rest wait and go out together
    results = rig.reader("deliveries", "delivery_result")
    rig.produce(blocked + chatty)
    got = results.wait_for(9, timeout=90, alive=worker.alive)
    assert worker.alive(), worker.output()[-3000:]
    by_id = {r["reply_id"]: r for r in got}
    assert [by_id[r["reply_id"]]["outcome"] for r in blocked] == ["failed_permanent"] * 3
    assert all(by_id[r["reply_id"]]["http_status"] == 403 for r in blocked)
    assert [by_id[r["reply_id"]]["outcome"] for r in chatty] == ["delivered"] * 6
    sent_778 = rig.sandbox.client.deliveries(chat="778")
    assert texts_by_chat(sent_778)["778"] == [r["text"] for r in chatty]
    assert len(sent_778) < len(chatty)  # coalesced: fewer messages than replies, same texts, same order
    assert len({by_id[r["reply_id"]]["platform_message_id"] for r in chatty}) == len(sent_778)

    dlq_reader = rig.reader("replies.dlq", "reply")
    dlq = dlq_reader.wait_for(3, timeout=30)
    assert [d["reply_id"] for d in dlq] == [r["reply_id"] for r in blocked]  # straight there, in order
    assert all("403" in d["last_error"] and d["attempt"] == 1 for d in dlq)
    headers = dict(dlq_reader.items[0][2].headers())
    assert b"403" in headers["x-botstream-dlq-reason"] and headers["x-botstream-dlq-outcome"] == b"failed_permanent"
    assert rig.retry_records() == 0  # permanent failures skip the retry chain

    listed = rig.cli("dlq", "list", "--chat", "777", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["reply_id"] for r in rows] == [r["reply_id"] for r in blocked]
    assert all("403" in r["reason"] and r["outcome"] == "failed_permanent" for r in rows)
    shown = rig.cli("dlq", "show", blocked[0]["reply_id"])
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["reply"]["text"] == blocked[0]["text"]

    rig.sandbox.client.patch_config({"faults": {"forbidden_chats": []}})  # the user unblocked the bot
    replayed = rig.cli("dlq", "replay", "--chat", "777", "--rate", "50")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed 3 record(s)" in replayed.stdout
    wait_until(lambda: results.poll() >= 0 and sum(
        1 for _, r, _ in results.items if r["chat_key"] == "telegram:tg:777" and r["outcome"] == "delivered") == 3,
        timeout=60, what="replayed replies delivered")
    assert texts_by_chat(rig.sandbox.client.deliveries(chat="777"))["777"] == [r["text"] for r in blocked]

    again = rig.cli("dlq", "replay", "--chat", "777")
    assert "replayed 0 record(s)" in again.stdout  # each DLQ record is replayed once
    assert rig.cli("dlq", "list").stdout.strip().endswith("0 record(s)")
    assert rig.cli("dlq", "list", "--all").stdout.count("(replayed)") == 3
    results.wait_for(len(results.items) + 1, timeout=3)
    final = Counter((r["reply_id"], r["outcome"]) for _, r, _ in results.items if r["chat_key"].endswith(":777"))
    assert all(final[(r["reply_id"], "delivered")] == 1 for r in blocked)
    print(f"\ndlq: 3 replies dead-lettered with {rows[0]['reason']!r}; replayed once after the fix and "
          f"delivered in order; chat 778's 6 replies went out as {len(sent_778)} messages")
