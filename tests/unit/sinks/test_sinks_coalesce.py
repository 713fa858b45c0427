"""Coalescing of consecutive plain-text replies into one message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sinks_factories import make_reply

from botstream.sinks.coalesce import coalesce, merged_reply, text_length


def r(seq: int, text: str | None = "x", chat: str = "42", **overrides: Any) -> dict[str, Any]:
    reply: dict[str, Any] = make_reply(chat_id=chat, reply_id=f"r{chat}-{seq}", chat_seq=seq, text=text,
                                       **overrides)
    return reply


def ids(groups: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[str]]:
    return [[reply["reply_id"] for reply in group] for group in groups]


def test_consecutive_plain_texts_merge() -> None:
    groups = coalesce([r(1, "a"), r(2, "b"), r(3, "c")], 4096)
    assert ids(groups) == [["r42-1", "r42-2", "r42-3"]]
    merged = merged_reply(groups[0])
    assert (merged["text"], merged["reply_id"], merged["chat_seq"]) == ("a\n\nb\n\nc", "r42-1", 3)


def test_limit_counts_the_separator() -> None:
    assert ids(coalesce([r(1, "a" * 5), r(2, "b" * 5)], 12)) == [["r42-1", "r42-2"]]
    assert ids(coalesce([r(1, "a" * 5), r(2, "b" * 5)], 11)) == [["r42-1"], ["r42-2"]]


def test_limit_counts_utf16_units() -> None:
    assert text_length("😀") == 2
    assert ids(coalesce([r(1, "😀"), r(2, "😀")], 5)) == [["r42-1"], ["r42-2"]]


def test_overlong_reply_stands_alone() -> None:
    assert ids(coalesce([r(1, "a" * 50), r(2, "b")], 10)) == [["r42-1"], ["r42-2"]]


def test_edits_typing_followups_and_markup_never_merge_and_break_the_run() -> None:
    batch = [r(1, "a"), r(2, "b", kind="edit", target_message_id="9"), r(3, "c"),
             r(4, None, kind="typing"), r(5, "d"), r(6, "e", markup='{"inline_keyboard": []}'), r(7, "f"),
             r(8, "g", kind="followup"), r(9, "h")]
    assert ids(coalesce(batch, 4096)) == [[f"r42-{n}"] for n in range(1, 10)]


def test_reply_to_only_on_the_first() -> None:
    batch = [r(1, "a", reply_to="100"), r(2, "b"), r(3, "c", reply_to="101"), r(4, "d")]
    groups = coalesce(batch, 4096)
    assert ids(groups) == [["r42-1", "r42-2"], ["r42-3", "r42-4"]]
    assert merged_reply(groups[0])["reply_to"] == "100"


def test_thread_and_options_must_match() -> None:
    batch = [r(1, thread_id="t1"), r(2, thread_id="t2"), r(3, options={"parse_mode": "HTML"}),
             r(4, options={"parse_mode": "HTML"})]
    assert ids(coalesce(batch, 4096)) == [["r42-1"], ["r42-2"], ["r42-3", "r42-4"]]


def test_chats_are_grouped_separately_and_each_keeps_its_order() -> None:
    batch = [r(1, chat="1"), r(1, chat="2"), r(2, chat="1"), r(2, chat="2"), r(3, chat="1")]
    groups = coalesce(batch, 4096)
    assert ids(groups) == [["r1-1", "r1-2", "r1-3"], ["r2-1", "r2-2"]]
    flattened = [reply["reply_id"] for group in groups for reply in group]
    for chat in ("1", "2"):
        mine = [i for i in flattened if i.startswith(f"r{chat}-")]
        assert mine == sorted(mine)


def test_single_reply_is_returned_unchanged() -> None:
    reply = r(1, "a")
    assert merged_reply([reply]) == reply
    assert coalesce([], 4096) == []
