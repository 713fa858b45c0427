"""HoldBack: a chat's later replies wait while one of its replies is in the retry chain."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from botstream.sinks.hold import Admission, Blocker, ChatHold, HoldBack, held_key, hop_id

CHAT = "telegram:b1:42"


def reply(n: int, chat: str = CHAT, attempt: int = 0) -> dict[str, Any]:
    return {"reply_id": f"r{n}", "chat_key": chat, "chat_seq": n * 1000, "attempt": attempt, "not_before_ms": 0}


@pytest.fixture
def tables() -> tuple[dict[bytes, Any], dict[bytes, Any]]:
    return {}, {}


@pytest.fixture
def hold(tables: tuple[dict[bytes, Any], dict[bytes, Any]]) -> HoldBack:
    return HoldBack(*tables)


def test_a_clear_chat_sends_and_keeps_no_state(hold: HoldBack, tables: tuple[dict, dict]) -> None:
    assert hold.admit(CHAT, reply(1)) is Admission.SEND
    assert tables == ({}, {})
    assert hold.state(CHAT) == ChatHold()


def test_a_blocked_chat_holds_later_replies_in_arrival_order(hold: HoldBack) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    assert [hold.admit(CHAT, reply(n)) for n in (2, 3, 4)] == [Admission.HOLD] * 3
    st = hold.state(CHAT)
    assert st.blocker == Blocker("r1", 1, 1, 0) and st.held == 3
    assert [r["reply_id"] for r in hold.peek(CHAT, 10)] == ["r2", "r3", "r4"]
    assert hold.admit("telegram:b1:other", reply(9, "telegram:b1:other")) is Admission.SEND  # other chats flow


def test_redeliveries_after_a_crash_are_recognised(hold: HoldBack) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    hold.admit(CHAT, reply(2))
    assert hold.admit(CHAT, reply(1)) is Admission.IN_CHAIN  # the blocker itself, read again from replies
    assert hold.admit(CHAT, reply(2)) is Admission.ALREADY_HELD
    assert hold.state(CHAT).held == 1


def test_a_replay_carries_an_old_seq_and_is_still_held(hold: HoldBack) -> None:
    hold.block(CHAT, reply(5, attempt=1), level=1)
    hold.admit(CHAT, reply(6))
    old = reply(2)
    assert hold.admit(CHAT, old) is Admission.ALREADY_HELD
    assert hold.admit(CHAT, old, replayed=True) is Admission.HOLD
    assert [r["reply_id"] for r in hold.peek(CHAT, 5)] == ["r6", "r2"]


def test_only_the_current_hop_of_the_blocker_is_live(hold: HoldBack) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    assert hold.is_live(CHAT, reply(1, attempt=1))
    hold.block(CHAT, reply(1, attempt=2), level=2)  # failed again: the next hop is the live one
    assert not hold.is_live(CHAT, reply(1, attempt=1))
    assert hold.is_live(CHAT, reply(1, attempt=2))
    assert not hold.is_live(CHAT, reply(2, attempt=2))
    assert not hold.is_live("telegram:b1:other", reply(1, attempt=2))


def test_release_in_order_then_the_chat_is_forgotten(hold: HoldBack, tables: tuple[dict, dict]) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    for n in (2, 3, 4):
        hold.admit(CHAT, reply(n))
    hold.unblock(CHAT)
    assert hold.head(CHAT)["reply_id"] == "r2"  # type: ignore[index]
    hold.release(CHAT, 2)  # r2 and r3 delivered (one coalesced message, say)
    assert hold.head(CHAT)["reply_id"] == "r4"  # type: ignore[index]
    hold.release(CHAT, 1)
    assert hold.head(CHAT) is None
    assert tables == ({}, {})


def test_a_held_reply_that_fails_becomes_the_blocker_and_leaves_the_queue(hold: HoldBack) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    hold.admit(CHAT, reply(2))
    hold.admit(CHAT, reply(3))
    hold.unblock(CHAT)
    hold.block(CHAT, reply(2, attempt=1), level=1)  # released, sent, failed again
    st = hold.state(CHAT)
    assert st.blocker is not None and st.blocker.reply_id == "r2" and st.held == 1
    assert [r["reply_id"] for r in hold.peek(CHAT, 5)] == ["r3"]


def test_a_gap_at_the_head_is_skipped(hold: HoldBack, tables: tuple[dict, dict]) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    hold.admit(CHAT, reply(2))
    hold.admit(CHAT, reply(3))
    del tables[1][held_key(CHAT, 0)]  # a crash between deleting the entry and moving the head
    hold.unblock(CHAT)
    assert hold.head(CHAT)["reply_id"] == "r3"  # type: ignore[index]
    assert hold.state(CHAT).held == 1


def test_state_round_trips_through_json(hold: HoldBack, tables: tuple[dict, dict]) -> None:
    hold.block(CHAT, {**reply(7, attempt=3), "not_before_ms": 123}, level=2)
    raw = tables[0][CHAT.encode()]
    assert raw == {"b": {"id": "r7", "a": 3, "l": 2, "nb": 123}, "h": 0, "t": 0, "s": 7000}
    assert ChatHold.from_json(raw).to_json() == raw
    hold.block(CHAT, reply(7, attempt=4), level=3)
    raw = tables[0][CHAT.encode()]
    assert raw["b"] == {"id": "r7", "a": 4, "l": 3, "nb": 0}
    assert ChatHold.from_json(raw).to_json() == raw


def test_only_the_exact_live_hop_counts_as_lost(hold: HoldBack) -> None:
    hold.block(CHAT, reply(1, attempt=1), level=1)
    hold.admit(CHAT, reply(2))
    assert hold.lost_hop(CHAT, 1, hop_id("r1", 0)) is None  # an earlier hop of that reply: stale
    assert hold.lost_hop(CHAT, 2, hop_id("r1", 1)) is None  # the same hop id on another retry topic
    assert hold.lost_hop(CHAT, 1, None) is None              # no hop header: nobody's live hop
    assert hold.lost_hop("telegram:b1:other", 1, hop_id("r1", 1)) is None
    lost = hold.lost_hop(CHAT, 1, hop_id("r1", 1))
    assert lost is not None and lost.reply_id == "r1" and lost.attempt == 1
    hold.unblock(CHAT)
    assert [r["reply_id"] for r in hold.peek(CHAT, 5)] == ["r2"]  # the held reply goes on
    assert hold.lost_hop(CHAT, 1, hop_id("r1", 1)) is None  # nothing to lose twice


def test_a_blocker_noted_by_an_older_version_reads_back(hold: HoldBack, tables: tuple[dict, dict]) -> None:
    tables[0][CHAT.encode()] = {"b": {"id": "r1", "a": 1, "l": 1, "nb": 0, "w": [3, 100]}, "h": 0, "t": 0, "s": 1000}
    assert hold.state(CHAT).blocker == Blocker("r1", 1, 1, 0)
    assert hold.lost_hop(CHAT, 1, hop_id("r1", 1)) is not None


def simulate(seed: int, chats: int = 4, per_chat: int = 12) -> tuple[dict[str, list[int]], int]:
    """Drive HoldBack the way the worker does, with a platform that fails at random; returns the
    delivery order per chat and how many times a reply went to the retry chain."""
    rng = random.Random(seed)
    hold = HoldBack({}, {})
    incoming: deque[tuple[str, Any]] = deque()
    for n in range(per_chat):
        for c in range(chats):
            incoming.append(("new", reply(n, f"telegram:b1:{c}")))
    chain: list[tuple[float, dict[str, Any]]] = []  # (due, retry record), in no particular order
    delivered: dict[str, list[int]] = {}
    parked = 0
    clock = 0.0

    def attempt(chat: str, r: dict[str, Any]) -> bool:
        nonlocal parked
        if rng.random() < 0.3:
            rec = {**r, "attempt": r["attempt"] + 1}
            chain.append((clock + rng.random() * 3, rec))
            if rng.random() < 0.2:  # a duplicate retry record, as after a crash
                chain.append((clock + rng.random() * 3, dict(rec)))
            hold.block(chat, rec, level=1)
            parked += 1
            return False
        delivered.setdefault(chat, []).append(r["chat_seq"] // 1000)
        return True

    def drain(chat: str) -> None:
        while hold.state(chat).blocker is None and (head := hold.head(chat)) is not None:
            if not attempt(chat, head):
                return
            hold.release(chat, 1)

    while incoming or chain:
        clock += 0.5
        if incoming and (not chain or rng.random() < 0.6):
            _, r = incoming.popleft()
            if hold.admit(r["chat_key"], r) is Admission.SEND:
                attempt(r["chat_key"], r)
            continue
        chain.sort(key=lambda item: item[0])
        _, rec = chain.pop(rng.randrange(min(2, len(chain))))  # due order, with some overtaking
        chat = rec["chat_key"]
        if not hold.is_live(chat, rec):
            continue
        if attempt(chat, rec):
            hold.unblock(chat)
            drain(chat)
    return delivered, parked


@pytest.mark.parametrize("seed", range(25))
def test_with_random_failures_every_chat_is_delivered_once_in_order(seed: int) -> None:
    delivered, parked = simulate(seed)
    assert parked > 0
    assert delivered == {f"telegram:b1:{c}": list(range(12)) for c in range(4)}
