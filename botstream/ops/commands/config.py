"""`botstream config show`: the effective settings and bots, secrets masked."""

from __future__ import annotations

import argparse

from botstream.core.bots import load_bots_file
from botstream.core.settings import Settings
from botstream.ops.cli import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show the effective configuration")
    s = p.add_subparsers(dest="action", required=True)
    s.add_parser("show", help="settings and bots (secrets masked)").set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    out: dict[str, object] = {"settings": settings.as_dict()}
    if settings.bots_file:
        out["bots"] = [b.as_dict() for b in load_bots_file(settings.bots_file).values()]
    print_json(out)
    return 0
