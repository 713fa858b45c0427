"""`botstream dlq list|show|replay`: see what failed for good, and send it again once fixed.

    botstream dlq list [--bot B] [--chat C] [--reason TEXT] [--since 2h] [--all] [--json]
    botstream dlq show <reply id>
    botstream dlq replay [--bot B] [--chat C] [--reason TEXT] [--since 2h] [--rate 10] [--dry-run]

`list` hides records already replayed unless `--all`. `replay` re-enqueues each matching record
once (see sinks/dlq.py for how "once" is kept), at most `--rate` per second.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

from botstream.core.settings import Settings
from botstream.ops.cli import add_json_flag, print_json

if TYPE_CHECKING:  # the CLI imports every command module; the DLQ's Kafka clients load on use
    from botstream.schemas.codec import Codec
    from botstream.sinks.dlq import DlqFilter, DlqRecord


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("dlq", help="list, show and replay dead-lettered replies")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="dead-lettered replies, newest last")
    _filters(ls)
    ls.add_argument("--all", action="store_true", help="include records already replayed")
    add_json_flag(ls, "one JSON object per line")
    ls.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="every DLQ record of one reply, with headers and the reply")
    show.add_argument("reply_id")
    add_json_flag(show, "print JSON (the default for this command)")
    show.set_defaults(func=cmd_show)
    rp = actions.add_parser("replay", help="re-enqueue matching records to replies (each once)")
    _filters(rp)
    rp.add_argument("--rate", type=float, default=10.0, help="records per second (default 10)")
    rp.add_argument("--dry-run", action="store_true", help="print what would be replayed; send nothing")
    add_json_flag(rp, "print the outcome as JSON")
    rp.set_defaults(func=cmd_replay)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bot", help="bot id")
    p.add_argument("--chat", help="chat key (platform:bot:chat) or chat id")
    p.add_argument("--reason", help="substring of the reason (case-insensitive)")
    p.add_argument("--since", type=_since, help="only records dead-lettered since: 2h, 30m, 7d, ISO 8601 or unix ms")


def _since(text: str) -> str:
    """Checked when the command line is read, so a bad value is a usage error (exit code 2)."""
    from botstream.sinks.dlq import parse_since

    try:
        parse_since(text, 0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _filter(args: argparse.Namespace, reply_id: str | None = None) -> DlqFilter:
    from botstream.sinks.dlq import DlqFilter, parse_since


    since = parse_since(args.since, int(time.time() * 1000)) if getattr(args, "since", None) else None
    return DlqFilter(bot=getattr(args, "bot", None), chat=getattr(args, "chat", None),
                     reason=getattr(args, "reason", None), since_ms=since, reply_id=reply_id)


def _records(settings: Settings) -> tuple[str, Codec, list[DlqRecord]]:
    from botstream.core.codec import codec_for
    from botstream.core.kafka import bootstrap_servers
    from botstream.sinks.dlq import read_dlq

    bootstrap = bootstrap_servers(settings)
    codec = codec_for(settings)
    return bootstrap, codec, read_dlq(settings, bootstrap, codec)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    flt = _filter(args)
    _, _, records = _records(settings)
    shown = [r for r in records if flt.matches(r) and (args.all or not r.replayed)]
    for r in shown:
        s = r.summary()
        if args.json:
            print(json.dumps(s, default=str))
        else:
            mark = " (replayed)" if r.replayed else ""
            print(f"{s['position']:>10}  {s['at']}  {s['bot'] or '-'}  {s['chat_key']}  {s['reply_id'] or '-'}  "
                  f"attempts={s['attempts']}  {s['outcome'] or '-'}: {s['reason']}{mark}")
    if not args.json:
        print(f"{len(shown)} record(s)")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    flt = _filter(args, reply_id=args.reply_id)
    _, _, records = _records(settings)
    found = [r.detail() for r in records if flt.matches(r)]
    if not found:
        if args.json:
            print_json([])
        else:
            print(f"no DLQ record for reply {args.reply_id}")
        return 1
    print(json.dumps(found, indent=2, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.sinks.dlq import replay

    flt = _filter(args)
    bootstrap, codec, records = _records(settings)
    todo = [r for r in records if flt.matches(r) and not r.replayed]
    if args.dry_run:
        if args.json:
            print_json({"dry_run": True, "would_replay": [r.summary() for r in todo]})
            return 0
        for r in todo:
            print(f"would replay {r.position} {r.summary()['reply_id']} ({r.reason})")
        print(f"{len(todo)} record(s) would be replayed")
        return 0
    report = replay(settings, bootstrap, todo, codec, rate=args.rate)
    if args.json:
        print_json({"replayed": report.replayed, "skipped": report.skipped, "errors": report.errors})
        return 1 if report.errors else 0
    for err in report.errors:
        print(f"error: {err}")
    print(f"replayed {len(report.replayed)} record(s); skipped {len(report.skipped)} undecodable")
    return 1 if report.errors else 0
