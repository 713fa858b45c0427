"""`botstream topics apply|list`: the cluster made to match the catalog, and the difference shown."""

from __future__ import annotations

import argparse

from botstream.core.kafka import bootstrap_servers
from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog, list_catalog
from botstream.ops.cli import add_json_flag, print_json
from botstream.ops.commands.tail import add_tail_parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topics", help="the topic catalog: apply it, compare it with the cluster, tail a topic")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("apply", help="create missing topics and update configs (idempotent)")
    a.add_argument("--grow", action="store_true", help="grow topics that have fewer partitions than the catalog")
    add_json_flag(a, "print the report as JSON")
    a.set_defaults(func=cmd_apply)
    ls = s.add_parser("list", help="catalog vs cluster")
    add_json_flag(ls, "print the rows as JSON")
    ls.set_defaults(func=cmd_list)
    add_tail_parser(s)


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    report = apply_catalog(settings, bootstrap_servers(settings), grow=args.grow)
    if args.json:
        print_json({"ok": report.ok, "created": report.created, "updated": report.updated, "grown": report.grown,
                    "unchanged": report.unchanged, "warnings": report.warnings, "errors": report.errors})
    else:
        for line in report.lines():
            print(line)
    return 0 if report.ok else 1


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = list_catalog(settings, bootstrap_servers(settings))
    if args.json:
        print_json(rows)
        return 0
    print(f"{'topic':40} {'catalog':>7} {'cluster':>7}  cleanup")
    for r in rows:
        cluster = "-" if r["cluster_partitions"] is None else r["cluster_partitions"]
        flag = "" if r["cluster_partitions"] in (None, r["catalog_partitions"]) else "  (differs!)"
        print(f"{r['topic']:40} {r['catalog_partitions']:>7} {cluster:>7}  {r['cleanup']}{flag}")
    return 0
