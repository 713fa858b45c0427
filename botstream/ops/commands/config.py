"""`botstream config show|check`: the effective configuration (credentials masked), and a check of it.

    botstream config show [--json]     settings and bots as JSON, every credential masked (URLs too)
    botstream config check [--json]    load the bots file and import every bot's handler, start nothing;
                                       exit code 0, or the code of what is wrong (botstream.core.exitcodes)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botstream.core.settings import Settings
from botstream.ops.cli import add_json_flag, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("config", help="show or check the effective configuration")
    s = p.add_subparsers(dest="action", required=True)
    show = s.add_parser("show", help="settings and bots (credentials masked)")
    add_json_flag(show, "print JSON (the default for this command)")
    show.set_defaults(func=cmd_show)
    check = s.add_parser("check", help="load the bots file and import every handler; start nothing")
    check.add_argument("--bots", type=Path, help="bots file (default BOTSTREAM_BOTS_FILE)")
    add_json_flag(check, "print what was checked as JSON")
    check.set_defaults(func=cmd_check)


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.core.bots import load_bots_file
    from botstream.core.logs import mask_urls

    out: dict[str, object] = {"settings": mask_urls(settings.as_dict())}
    if settings.bots_file:
        out["bots"] = [mask_urls(b.as_dict()) for b in load_bots_file(settings.bots_file).values()]
    print_json(out)
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops import preflight

    path = args.bots or settings.bots_file
    registry = preflight.bots(settings, path)
    loaded = preflight.handlers(registry)
    bots = [{"id": b.id, "platform": b.platform, "handler": b.handler,
             "handler_file": getattr(sys.modules.get(b.handler or ""), "__file__", None)}
            for b in registry.values()]
    if args.json:
        print_json({"ok": True, "bots_file": str(registry.source), "bots": bots})
    else:
        print(f"{registry.source}: {len(registry)} bot(s), {len(loaded)} handler(s) imported")
        for b in bots:
            print(f"  {b['id']:16} {b['platform']:9} {b['handler'] or '(no handler)'}"
                  + (f"  ({b['handler_file']})" if b["handler_file"] else ""))
    return 0
