"""`botstream` command line: one entry point, one subcommand per job.

Each stage registers its subcommands through `COMMANDS` (name -> module with `add_parser(sub)`),
so this module stays small and importing the CLI does not import every stage.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from botstream import __version__
from botstream.core.errors import BotstreamError
from botstream.core.exitcodes import ExitCode, exit_code_for
from botstream.core.settings import Settings
from botstream.schemas.errors import SchemaError

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
    "new-bot": "botstream.ops.commands.newbot",
}


# BOTSTREAM_* variables that are not fields of Settings but are read on purpose
OTHER_VARIABLES = ("BOTSTREAM_OTEL",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botstream", description=__doc__.splitlines()[0],
                                     epilog="Exit codes: botstream.core.exitcodes (docs/operations.md lists them).")
    parser.add_argument("--version", action="version", version=f"botstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: exit code 2, argparse's
    try:
        settings = Settings.from_env()
        for warning in unknown_variables(os.environ):
            print(f"botstream: warning: {warning}", file=sys.stderr, flush=True)
        return int(args.func(args, settings) or 0)
    except (BotstreamError, SchemaError) as exc:
        print(f"botstream: error: {exc}", file=sys.stderr, flush=True)
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per BOTSTREAM_* variable that is no setting, with the nearest valid name."""
    prefix = "BOTSTREAM_"
    known = {*Settings().env_names().values(), *OTHER_VARIABLES}
    suffixes = sorted(n[len(prefix):] for n in known if n.startswith(prefix))  # the shared prefix is no likeness
    out = []
    for name in sorted(environ):
        if not name.startswith(prefix) or name in known:
            continue
        near = difflib.get_close_matches(name[len(prefix):], suffixes, n=1, cutoff=0.6)
        hint = f"; did you mean {prefix}{near[0]}?" if near else " (`botstream config show` lists the settings)"
        out.append(f"{name} is not a botstream setting, ignored{hint}")
    return out


def add_json_flag(parser: argparse.ArgumentParser, what: str = "print JSON instead of text") -> None:
    """`--json` on a command that prints data: with it, stdout is JSON only."""
    parser.add_argument("--json", action="store_true", help=what)


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
