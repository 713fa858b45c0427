"""`botstream up`: what `make run` starts.

Today: the embedded broker (or `KAFKA_BOOTSTRAP_SERVERS`), the topic catalog applied, then it stays in
the foreground until Ctrl-C and stops what it started. The pipeline's services join as they land.
"""

from __future__ import annotations

import argparse

from botstream.admin import apply_catalog
from botstream.cli import wait_for_stop
from botstream.embedded_kafka import kafka_for
from botstream.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run the local stack in the foreground (Ctrl-C stops it)")
    p.add_argument("--free-port", action="store_true", help="run the embedded broker on a free port")
    p.set_defaults(func=cmd_up)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    kafka = kafka_for(settings, pick_free_port=args.free_port, tie_to_parent=True)
    bootstrap = kafka.start()
    try:
        print(f"Kafka ready at {bootstrap}", flush=True)
        report = apply_catalog(settings, bootstrap)
        for line in report.lines():
            print(f"  topics: {line}")
        if not report.ok:
            return 1
        print("botstream is up. Ctrl-C stops everything.", flush=True)
        wait_for_stop()
    finally:
        kafka.stop()
        print("stopped", flush=True)
    return 0
