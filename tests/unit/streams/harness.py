"""The streams processor on a real partition store (RocksDB in a temp dir), without Faust or Kafka."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from botstream.core.runtime import StateView
from botstream.core.state.store import PartitionStore, TableSpec
from botstream.streams.processor import CHATS, CONVERSATIONS, DEDUPE, DEDUPE_INDEX, Outcome, UpdateProcessor

TOPIC = "updates"
TABLES = [TableSpec(DEDUPE, "dedupe-changelog"), TableSpec(CONVERSATIONS, "conversations-changelog"),
          TableSpec(DEDUPE_INDEX, None), TableSpec(CHATS, None)]


class ProcessorHarness:
    """`process(update, partition, offset)` as the worker calls it: a state view bound to the record's
    position over one partition's store, which reads back what earlier records wrote."""

    def __init__(self, processor: UpdateProcessor) -> None:
        self.processor = processor
        self._dir = tempfile.TemporaryDirectory(prefix="botstream-store-")
        self.store = PartitionStore(Path(self._dir.name) / "p0", 0, TABLES)

    def view(self, offset: int) -> StateView:
        return StateView(self.store, TOPIC, offset)

    async def process(self, update: dict[str, Any], partition: int, offset: int,
                      headers: list[tuple[str, bytes]] | None = None) -> Outcome:
        return await self.processor.process(update, self.view(offset), partition, offset, headers)

    def conversation(self, chat: str) -> Any:
        return self.store.get(CONVERSATIONS, chat.encode())

    def checkpoint(self, upto: int) -> None:
        """Everything before input offset `upto` becomes the database's (as after a committed checkpoint)."""
        self.store.prepare({TOPIC: upto})
        self.store.persist({})

    def table(self, name: str) -> list[tuple[bytes, Any]]:
        return list(self.store.scan(name))

    def close(self) -> None:
        self.store.close()
        self._dir.cleanup()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.processor, name)
