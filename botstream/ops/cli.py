"""`botstream` command line: one entry point, one subcommand per job.

Each stage registers its subcommands through `COMMANDS` (name -> module with `add_parser(sub)`),
so this module stays small and importing the CLI does not import every stage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from typing import Any

from botstream.core.errors import BotstreamError
from botstream.core.settings import Settings

# subcommand -> module providing `add_parser(subparsers)`; the parser sets `func(args, settings) -> int`.
COMMANDS = {
    "kafka": "botstream.ops.commands.kafka",
    "topics": "botstream.ops.commands.topics",
    "config": "botstream.ops.commands.config",
    "up": "botstream.ops.commands.up",
    "streams": "botstream.ops.commands.streams",
    "sandbox": "botstream.ops.commands.sandbox",
    "ingest": "botstream.ops.commands.ingest",
    "sinks": "botstream.ops.commands.sinks",
    "dlq": "botstream.ops.commands.dlq",
    "lag": "botstream.ops.commands.lag",
    "demo": "botstream.ops.commands.demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botstream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings) or 0)
    except BotstreamError as exc:
        print(f"botstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def wait_for_stop() -> int:
    """Block until SIGINT/SIGTERM; return the signal number."""
    stop = threading.Event()
    got: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        got.append(signum)
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return got[0] if got else 0


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
