"""`botstream demo --rate R --chats C --duration S`: signed synthetic traffic into a running stack."""

from __future__ import annotations

import argparse
import asyncio
import sys

from botstream.core.bots import load_bots_file
from botstream.core.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="drive signed synthetic webhooks (all platforms) into a running `botstream up`")
    p.add_argument("--rate", type=float, default=20.0, help="webhooks per second (default 20)")
    p.add_argument("--chats", type=int, default=50, help="distinct chats per bot (default 50)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of traffic (default 10)")
    p.add_argument("--redeliveries", type=float, default=0.05, help="share of redelivered webhooks (default 0.05)")
    p.add_argument("--ingest", help="ingest base URL (default http://127.0.0.1:BOTSTREAM_INGEST_PORT)")
    p.add_argument("--sandbox", help="sandbox base URL (default http://127.0.0.1:BOTSTREAM_SANDBOX_PORT)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops.commands.up import EXAMPLE_BOTS
    from botstream.ops.demo import run_demo, summary_table

    bots = load_bots_file(settings.bots_file or EXAMPLE_BOTS)
    ingest = args.ingest or f"http://127.0.0.1:{settings.ingest_port}"
    sandbox = args.sandbox or f"http://127.0.0.1:{settings.sandbox_port}"

    def progress(line: str) -> None:
        sys.stdout.write(line if sys.stdout.isatty() else line.lstrip("\r") + "\n")
        sys.stdout.flush()

    stats = asyncio.run(run_demo(bots, ingest, sandbox, rate=args.rate, chats=args.chats, duration=args.duration,
                                 redelivery_ratio=args.redeliveries, progress=progress))
    print("\n\n" + summary_table(stats))
    return 0 if sum(stats.acked.values()) else 1
