"""`botstream ingest`: the webhook front door (verify, normalize, produce, acknowledge when durable)."""

from __future__ import annotations

import argparse

from botstream.core.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("ingest", help="serve the platform webhooks and write them to the updates topic")
    p.add_argument("--host", help="address to listen on (default BOTSTREAM_INGEST_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default BOTSTREAM_INGEST_PORT or 8080)")
    p.add_argument("--workers", type=int, help="processes sharing the port (default BOTSTREAM_INGEST_WORKERS or 1)")
    p.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.ops import preflight

    preflight.bots(settings)
    preflight.port(args.host or settings.ingest_host, settings.ingest_port if args.port is None else args.port,
                   "ingest", "BOTSTREAM_INGEST_PORT")
    preflight.broker(settings)
    from botstream.ingest.worker import run_ingest

    return run_ingest(settings, host=args.host, port=args.port, workers=args.workers)
