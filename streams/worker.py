"""`botstream streams`: run one streams worker process."""

from __future__ import annotations

from botstream.core.faust_app import run_faust_worker
from botstream.core.settings import Settings


def run_streams_worker(settings: Settings) -> int:
    from botstream.streams.app import StreamsWorker

    return run_faust_worker("streams", settings, StreamsWorker)
