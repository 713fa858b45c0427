"""`botstream sinks`: run one sinks worker process."""

from __future__ import annotations

from botstream.core.faust_app import run_faust_worker
from botstream.core.settings import Settings


def run_sinks_worker(settings: Settings) -> int:
    from botstream.sinks.app import SinksWorker

    return run_faust_worker("sinks", settings, SinksWorker)
