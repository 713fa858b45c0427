"""chat_key / parse_chat_key: the Kafka key of every chat-path topic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botstream.schemas.records import ChatKey, chat_key, parse_chat_key

_part = st.text(min_size=1).filter(lambda s: ":" not in s)


def test_format() -> None:
    assert chat_key("telegram", "support", "-100123") == "telegram:support:-100123"


@given(platform=_part, bot_id=_part, chat_id=st.text())
def test_round_trip(platform: str, bot_id: str, chat_id: str) -> None:
    key = chat_key(platform, bot_id, chat_id)
    assert parse_chat_key(key) == ChatKey(platform, bot_id, chat_id)
    assert parse_chat_key(key.encode()) == (platform, bot_id, chat_id)


def test_chat_id_may_contain_colons() -> None:
    assert parse_chat_key(chat_key("generic", "hooks", "room:42:a")).chat_id == "room:42:a"


@pytest.mark.parametrize(
    ("platform", "bot_id"), [("tele:gram", "b"), ("slack", "b:1"), ("", "b"), ("slack", "")]
)
def test_ambiguous_or_empty_parts_are_rejected(platform: str, bot_id: str) -> None:
    with pytest.raises(ValueError):
        chat_key(platform, bot_id, "c")


@pytest.mark.parametrize("key", ["", "telegram", "telegram:bot", ":bot:c", "telegram::c"])
def test_parse_rejects_non_keys(key: str) -> None:
    with pytest.raises(ValueError, match="not a chat key"):
        parse_chat_key(key)
