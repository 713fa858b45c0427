"""`botstream kafka up|down|status|jars`: the embedded broker for local runs."""

from __future__ import annotations

import argparse

from botstream.core.exitcodes import ExitCode
from botstream.core.settings import Settings
from botstream.ops.cli import add_json_flag, print_json, wait_for_stop
from botstream.ops.embedded_kafka import EmbeddedKafka, ensure_jars, kafka_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kafka", help="run the embedded single-node Kafka (no Docker needed)")
    s = p.add_subparsers(dest="action", required=True)
    up = s.add_parser("up", help="start the broker and wait until it answers metadata requests")
    up.add_argument("--port", type=int, help="PLAINTEXT port (default BOTSTREAM_KAFKA_PORT or 9092)")
    up.add_argument("--free-port", action="store_true", help="pick free ports instead of failing on a taken one")
    up.add_argument("--foreground", action="store_true", help="stay in the foreground; Ctrl-C stops the broker")
    up.add_argument("--nodes", type=int, default=1, choices=(1, 3),
                    help="3 = a three-node KRaft cluster on this host (RF 3, min ISR 2), for failover tests")
    add_json_flag(up, "print the address, version and log file as JSON")
    up.set_defaults(func=cmd_up)
    s.add_parser("down", help="stop the broker started by `kafka up`").set_defaults(func=cmd_down)
    status = s.add_parser("status", help="is it running, and where (JSON; exit code 3 when not running)")
    add_json_flag(status, "print JSON (the default for this command)")
    status.set_defaults(func=cmd_status)
    jars = s.add_parser("jars", help="fetch the broker's jars through Maven (once)")
    add_json_flag(jars, "print the jar folder as JSON")
    jars.set_defaults(func=cmd_jars)


def _kafka(settings: Settings, args: argparse.Namespace, *, tie_to_parent: bool = False) -> EmbeddedKafka:
    return EmbeddedKafka(settings.data_dir / "kafka", port=getattr(args, "port", None) or settings.kafka_port,
                         nodes=getattr(args, "nodes", 1),
                         heap=settings.kafka_heap, cache_dir=settings.cache_dir,
                         pick_free_port=getattr(args, "free_port", False), tie_to_parent=tie_to_parent)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    if settings.kafka_bootstrap_servers:
        if args.json:
            print_json({"bootstrap": settings.kafka_bootstrap_servers, "external": True, "started": False})
        else:
            print(f"KAFKA_BOOTSTRAP_SERVERS is set: using {settings.kafka_bootstrap_servers}, nothing started")
        return 0
    kafka = _kafka(settings, args, tie_to_parent=args.foreground)
    bootstrap = kafka.start()
    if args.json:
        print_json({"bootstrap": bootstrap, "version": kafka.version, "log": str(kafka.log_files[0]), "started": True})
    else:
        print(f"Kafka {kafka.version} ready at {bootstrap} (log: {kafka.log_files[0]})", flush=True)
    if args.foreground:
        try:
            wait_for_stop()
        finally:
            kafka.stop()
            print("Kafka stopped")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    kafka = _kafka(settings, args)
    was = kafka.running()
    kafka.stop()
    print("Kafka stopped" if was else "Kafka was not running")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    if settings.kafka_bootstrap_servers:
        print_json(kafka_for(settings).status())
        return 0
    status = _kafka(settings, args).status()
    print_json(status)
    return ExitCode.OK if status["running"] else ExitCode.NOT_RUNNING


def cmd_jars(args: argparse.Namespace, settings: Settings) -> int:
    libs = ensure_jars(settings.cache_dir)
    if args.json:
        print_json({"libs": str(libs)})
    else:
        print(libs)
    return 0
