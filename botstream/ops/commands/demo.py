"""`botstream demo --rate R --chats C --duration S`: signed synthetic traffic into a running stack."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from botstream.core.bots import load_bots_file
from botstream.core.settings import Settings
from botstream.ops.cli import add_json_flag, print_json


def _number(kind: type, *, above: float | None = None, at_least: float | None = None,
            below: float | None = None, at_most: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number within bounds, else a usage error (exit code 2) saying which."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value != value:  # NaN
            raise argparse.ArgumentTypeError("must be a number")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"must be above {above:g}, not {text}")
        if at_least is not None and value < at_least:
            raise argparse.ArgumentTypeError(f"must be at least {at_least:g}, not {text}")
        if below is not None and not value < below:
            raise argparse.ArgumentTypeError(f"must be below {below:g}, not {text}")
        if at_most is not None and value > at_most:
            raise argparse.ArgumentTypeError(f"must be at most {at_most:g}, not {text}")
        return value

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("demo", help="drive signed synthetic webhooks (all platforms) into a running `botstream up`")
    p.add_argument("--rate", type=_number(float, above=0, at_most=100_000), default=20.0,
                   help="webhooks per second, > 0 (default 20)")
    p.add_argument("--chats", type=_number(int, at_least=1), default=50, help="distinct chats per bot, >= 1 (default 50)")
    p.add_argument("--duration", type=_number(float, above=0), default=10.0, help="seconds of traffic, > 0 (default 10)")
    p.add_argument("--redeliveries", type=_number(float, at_least=0, below=1), default=0.05,
                   help="share of redelivered webhooks, in [0, 1) (default 0.05)")
    p.add_argument("--ingest", help="ingest base URL (default http://127.0.0.1:BOTSTREAM_INGEST_PORT)")
    p.add_argument("--sandbox", help="sandbox base URL (default http://127.0.0.1:BOTSTREAM_SANDBOX_PORT)")
    add_json_flag(p, "print the final figures as JSON (progress goes to stderr)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops.commands.up import EXAMPLE_BOTS
    from botstream.ops.demo import run_demo, summary_table

    bots = load_bots_file(settings.bots_file or EXAMPLE_BOTS)
    ingest = args.ingest or f"http://127.0.0.1:{settings.ingest_port}"
    sandbox = args.sandbox or f"http://127.0.0.1:{settings.sandbox_port}"
    out = sys.stderr if args.json else sys.stdout

    def progress(line: str) -> None:
        out.write(line if out.isatty() else line.lstrip("\r") + "\n")
        out.flush()

    stats = asyncio.run(run_demo(bots, ingest, sandbox, rate=args.rate, chats=int(args.chats), duration=args.duration,
                                 redelivery_ratio=args.redeliveries, progress=progress))
    if args.json:
        print_json(stats.as_dict())
    else:
        print("\n\n" + summary_table(stats))
    return 0 if sum(stats.acked.values()) else 1
