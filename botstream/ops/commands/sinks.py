"""`botstream sinks`: run a sinks worker (rate-limited delivery, retry chain, ledger, DLQ)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from botstream.core.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("sinks", help="run a sinks worker (deliver replies to the platforms' APIs)")
    p.add_argument("--web-port", type=int, help="Faust web port, /metrics (default BOTSTREAM_SINKS_WEB_PORT)")
    p.add_argument("--data-dir", type=Path, help="RocksDB and worker state (default BOTSTREAM_DATA_DIR)")
    p.set_defaults(func=cmd_sinks)


def cmd_sinks(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops import preflight

    changes: dict[str, object] = {}
    if args.web_port:
        changes["sinks_web_port"] = args.web_port
    if args.data_dir:
        changes["data_dir"] = args.data_dir
    settings = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    preflight.bots(settings)
    preflight.port(settings.web_host, settings.sinks_web_port, "sinks web server", "BOTSTREAM_SINKS_WEB_PORT")
    preflight.broker(settings)
    from botstream.sinks.worker import run_sinks_worker

    return run_sinks_worker(settings)
