"""The project's own CPU cost per update, without Faust or Kafka: decode → UpdateProcessor → encode.

`UpdateProcessor` takes its tables as mappings and its output as a callable (sans-IO), so it runs here
on dicts holding what faust's RocksDB store would hold (the tables' values go through JSON, as the
store serialises them) with an emit that Avro-encodes each record and drops it. One thread, one
event loop, best of `repeat` runs: what a worker could do per CPU-second if Faust and the client cost
nothing. Its gap to the worker's updates per CPU-second is the framework's share; `--profile` prints
where the project's own time goes (cProfile).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import pstats
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from bench.streams import workload
from botstream.core.bots import load_bots_file
from botstream.schemas.codec import Codec
from botstream.streams.app import RECORD_OF
from botstream.streams.handlers import load_bot
from botstream.streams.processor import UpdateProcessor, load_handlers


class JsonTable(MutableMapping[bytes, Any]):
    """A dict that stores values as JSON bytes, as faust's RocksDB-backed tables do."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> Any:
        return json.loads(self.data[key])

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.data[key] = json.dumps(value).encode()

    def __delitem__(self, key: bytes) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def run(bots_file: Path, records: list[workload.Record], repeat: int = 3,
        profile: bool = False) -> dict[str, Any]:
    bots = load_bots_file(bots_file)
    handlers = load_handlers(bots, load_bot)
    codec = Codec()
    emitted = [0]

    async def emit(stream: str, key: str, record: dict[str, Any], headers: dict[str, bytes]) -> None:
        codec.encode(RECORD_OF[stream], record)
        emitted[0] += 1

    async def once() -> float:
        processor = UpdateProcessor(bots, handlers, dedupe=JsonTable(), dedupe_index={}, conversations=JsonTable(),
                                    emit=emit, dedupe_window_s=7 * 24 * 3600, handler_timeout_s=10.0)
        started = time.process_time()
        for offset, r in enumerate(records):
            update = codec.decode("update", r.value)
            await processor.process(update, 0, offset, {"correlation-id": b"x"})
        return time.process_time() - started

    best = min(asyncio.run(once()) for _ in range(repeat))
    out: dict[str, Any] = {"records": len(records), "updates_per_cpu_s": len(records) / best,
                           "us_per_update": best / len(records) * 1e6}
    if profile:
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        asyncio.run(once())
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(20)
        out["profile"] = text.getvalue()
    return out
