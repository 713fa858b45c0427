"""`botstream sandbox`: the local emulator of the platforms' send APIs (see sandbox/)."""

from __future__ import annotations

import argparse

from botstream.core.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="serve the platform sandbox (Telegram/Slack/Discord/WhatsApp send APIs)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help="default BOTSTREAM_SANDBOX_PORT (8090)")
    p.add_argument("--config", metavar="FILE", help="TOML or JSON sandbox config (limits, faults, seed)")
    p.add_argument("--seed", type=int, help="override the config's fault seed")
    p.add_argument("--no-limits", action="store_true", help="switch every rate limit off (throughput benchmarks)")
    p.set_defaults(func=cmd_sandbox)


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops import preflight
    from botstream.sandbox.cli import main

    preflight.port(args.host, args.port or settings.sandbox_port, "sandbox", "BOTSTREAM_SANDBOX_PORT")
    argv = ["--host", args.host, "--port", str(args.port or settings.sandbox_port)]
    if args.config:
        argv += ["--config", args.config]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if args.no_limits:
        argv.append("--no-limits")
    return main(argv)
