"""`botstream lag`: how far behind streams and sinks are, per partition — or served to Prometheus.

    botstream lag [--group G ...] [--json]            a table (or JSON) of committed vs end offsets
    botstream lag --serve [--host H] [--port 9309]    /metrics with botstream_consumer_lag (see botstream.ops.lag)

Groups shown: `<prefix>-streams`, `<prefix>-sinks` and every `--group` given.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from botstream.core.settings import Settings

if TYPE_CHECKING:  # the CLI parser is built on every command: import Kafka and Prometheus only when run
    from botstream.ops.lag import PartitionLag

DEFAULT_EXPORTER_PORT = 9309


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lag", help="consumer lag of the streams/sinks groups (table, JSON or a Prometheus exporter)")
    p.add_argument("--group", action="append", default=[], metavar="G",
                   help="another consumer group to report (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeout", type=float, default=10.0, help="table/JSON: seconds to wait for the broker (default 10)")
    p.add_argument("--serve", action="store_true", help="serve /metrics for Prometheus until stopped")
    p.add_argument("--host", default="127.0.0.1", help="--serve: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_EXPORTER_PORT,
                   help=f"--serve: port (default {DEFAULT_EXPORTER_PORT})")
    p.add_argument("--cache", type=float, default=10.0, help="--serve: seconds a reading is reused (default 10)")
    p.set_defaults(func=cmd_lag)


def cmd_lag(args: argparse.Namespace, settings: Settings) -> int:
    from botstream.core.kafka import bootstrap_servers

    bootstrap = bootstrap_servers(settings)
    if args.serve:
        return serve(settings, bootstrap, args)
    from botstream.ops.admin import admin_client
    from botstream.ops.lag import botstream_groups, consumer_lag

    groups = botstream_groups(settings, args.group)
    lags = consumer_lag(admin_client(settings, bootstrap), groups, timeout=args.timeout)
    if args.json:
        from botstream.ops.cli import print_json

        print_json(as_json(groups, lags))
    else:
        print(render_table(groups, lags))
    return 0


def as_json(groups: list[str], lags: list[PartitionLag]) -> dict[str, Any]:
    return {"groups": {g: {"total_lag": sum(p.lag for p in lags if p.group == g),
                           "partitions": [p.as_dict() for p in lags if p.group == g]} for g in groups}}


def render_table(groups: list[str], lags: list[PartitionLag]) -> str:
    """One row per partition, a total per group; groups with nothing committed say so."""
    width = max([len("group"), *(len(g) for g in groups)])
    twidth = max([len("topic"), *(len(p.topic) for p in lags)])
    lines = [f"{'group':{width}}  {'topic':{twidth}}  {'partition':>9}  {'committed':>12}  {'end':>12}  {'lag':>10}"]
    for g in groups:
        rows = [p for p in lags if p.group == g]
        if not rows:
            lines.append(f"{g:{width}}  (no committed offsets)")
            continue
        for p in rows:
            lines.append(f"{g:{width}}  {p.topic:{twidth}}  {p.partition:>9}  {p.committed:>12}  {p.end:>12}  {p.lag:>10}")
        lines.append(f"{g:{width}}  {'total':{twidth}}  {'':>9}  {'':>12}  {'':>12}  {sum(p.lag for p in rows):>10}")
    return "\n".join(lines)


def serve(settings: Settings, bootstrap: str, args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from botstream.ops.cli import wait_for_stop
    from botstream.ops.lag import ConsumerLagCollector

    # A registry of its own: the exporter's /metrics is the lag and nothing else this process imported.
    registry = CollectorRegistry()
    collector = ConsumerLagCollector(settings, bootstrap, cache_s=args.cache, groups=args.group)
    registry.register(collector)
    server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    print(f"lag exporter on http://{args.host}:{args.port}/metrics for groups {', '.join(collector.groups)}",
          flush=True)
    try:
        wait_for_stop()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    return 0
