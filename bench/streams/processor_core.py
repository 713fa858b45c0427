"""The project's own CPU cost per update, without Faust or Kafka: decode → UpdateProcessor → encode,
with the worker's state store (RocksDB through `PartitionStore`, checkpointed every `CHECKPOINT_EVERY`
updates: one changelog record per dirty key prepared, one WriteBatch written).

One thread, one event loop, best of `repeat` runs, with the worker's garbage-collector settings
(`botstream.core.gctune`, restored afterwards): what a worker could do per CPU-second if Faust and
the Kafka client cost nothing. Its gap to the worker's updates per CPU-second is the framework's and
the client's share; `--profile` prints where the project's own time goes (cProfile).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.streams import workload
from botstream.core.bots import load_bots_file
from botstream.core.gctune import tune_gc
from botstream.core.runtime import StateView
from botstream.core.state.store import PartitionStore
from botstream.schemas.codec import Codec
from botstream.streams.app import RECORD_OF
from botstream.streams.handlers import load_bot
from botstream.streams.processor import UpdateProcessor, load_handlers
from tests.unit.streams.harness import TABLES

CHECKPOINT_EVERY = 500
SORT = "tottime"


def run(bots_file: Path, records: list[workload.Record], repeat: int = 3,
        profile: bool = False) -> dict[str, Any]:
    bots = load_bots_file(bots_file)
    handlers = load_handlers(bots, load_bot)
    codec = Codec()
    emitted = [0]

    def emit(stream: str, key: str, record: Any, headers: list[tuple[str, bytes]]) -> None:
        codec.encode(RECORD_OF[stream], record)
        emitted[0] += 1

    async def once() -> float:
        processor = UpdateProcessor(bots, handlers, emit=emit, dedupe_window_s=7 * 24 * 3600, handler_timeout_s=10.0)
        with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
            store = PartitionStore(Path(tmp) / "p0", 0, TABLES)
            headers = [("correlation-id", b"x")]
            started = time.process_time()
            for offset, r in enumerate(records):
                update = codec.decode("update", r.value)
                await processor.process(update, StateView(store, "updates", offset), 0, offset, headers)
                if offset % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                    store.prepare({"updates": offset + 1})
                    store.persist({})
            spent = time.process_time() - started
            store.close()
        return spent

    thresholds = gc.get_threshold()
    tune_gc()
    try:
        best = min(asyncio.run(once()) for _ in range(repeat))
        out: dict[str, Any] = {"records": len(records), "updates_per_cpu_s": len(records) / best,
                               "us_per_update": best / len(records) * 1e6}
        if profile:
            prof = cProfile.Profile(time.process_time)
            prof.enable()
            asyncio.run(once())
            prof.disable()
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats(SORT).print_stats(45)
            out["profile"] = text.getvalue()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return out
