"""`botstream streams`, `botstream replay`, `botstream handoff`: the streams stage's commands."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from botstream.core.settings import Settings
from botstream.ops.cli import add_json_flag, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("streams", help="run a streams worker (dedupe, conversation state, handlers)")
    p.add_argument("--web-port", type=int, help="Faust web port (default BOTSTREAM_STREAMS_WEB_PORT)")
    p.add_argument("--data-dir", type=Path, help="RocksDB and worker state (default BOTSTREAM_DATA_DIR)")
    p.set_defaults(func=cmd_streams)
    r = sub.add_parser("replay", help="rebuild the conversations table from the messages topic")
    r.add_argument("--from", dest="start", default="beginning",
                   help="'beginning', an offset (e.g. 1200, per partition) or a time (ISO 8601 or unix ms)")
    r.add_argument("--dry-run", action="store_true", help="fold and print counts; write nothing")
    add_json_flag(r, "print the report as JSON (the default for this command)")
    r.set_defaults(func=cmd_replay)
    h = sub.add_parser("handoff", help="human handoff")
    hs = h.add_subparsers(dest="action", required=True)
    rel = hs.add_parser("release", help="give a chat back to the bot")
    rel.add_argument("chat_key", help="{platform}:{bot_id}:{chat_id}")
    rel.add_argument("--by", default=None, help="who released it (recorded on the event)")
    add_json_flag(rel, 'print {"released": <chat key>} instead of a sentence')
    rel.set_defaults(func=cmd_release)


def cmd_streams(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops import preflight

    changes = {}
    if args.web_port:
        changes["streams_web_port"] = args.web_port
    if args.data_dir:
        changes["data_dir"] = args.data_dir
    settings = dataclasses.replace(settings, **changes)
    preflight.handlers(preflight.bots(settings))
    preflight.port(settings.web_host, settings.streams_web_port, "streams web server", "BOTSTREAM_STREAMS_WEB_PORT")
    preflight.broker(settings)
    from botstream.streams.worker import run_streams_worker

    return run_streams_worker(settings)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.core.kafka import bootstrap_servers
    from botstream.streams.replay import replay

    report = replay(settings, bootstrap_servers(settings), args.start, write=not args.dry_run)
    print_json(report)
    return 0


def cmd_release(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.core.kafka import bootstrap_servers
    from botstream.streams.replay import release_handoff

    release_handoff(settings, bootstrap_servers(settings), args.chat_key, by=args.by)
    if args.json:
        print_json({"released": args.chat_key, "by": args.by})
    else:
        print(f"released {args.chat_key}")
    return 0
