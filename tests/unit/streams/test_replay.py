"""Replay's fold over the `messages` records (no broker: the records are given)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from botstream.schemas.codec import Codec
from botstream.schemas.errors import RegistryUnavailableError
from botstream.streams.replay import fold
from tests.unit.schemas import samples

CODEC = Codec()


@dataclass
class Record:
    value_: bytes
    partition_: int = 3

    def value(self) -> bytes:
        return self.value_

    def partition(self) -> int:
        return self.partition_


class RegistryDown(Codec):
    def decode(self, name, data):  # type: ignore[no-untyped-def,override]
        raise RegistryUnavailableError("schema registry unavailable", data)


def test_the_fold_passes_over_records_that_never_decode() -> None:
    events = samples.conversation_events()
    records = [Record(CODEC.encode("conversation_event", e)) for e in events[:2]]
    records.insert(1, Record(b"\x00garbage"))
    states, partition_of, folded = fold(records, CODEC)  # type: ignore[arg-type]
    chat = events[0]["chat_key"]
    assert folded == 2 and partition_of == {chat: 3}
    assert (states[chat]["turns"], states[chat]["replies"]) == (1, 1)


def test_the_fold_stops_when_the_registry_is_down_rather_than_lose_the_event() -> None:
    record = Record(CODEC.encode("conversation_event", samples.conversation_events()[0]))
    with pytest.raises(RegistryUnavailableError):
        fold([record], RegistryDown())  # type: ignore[list-item]
