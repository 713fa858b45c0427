"""`botstream topics tail <topic>`: the data team's view — records decoded to JSON lines."""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import uuid
from typing import Any

from botstream.core.settings import Settings


def add_tail_parser(s: argparse._SubParsersAction) -> None:
    t = s.add_parser("tail", help="print a topic's records decoded (Avro → JSON lines)")
    t.add_argument("topic", help="catalog name (updates, replies, ...) or a full topic name")
    t.add_argument("--from-beginning", action="store_true", help="start at the oldest record, not the newest")
    t.add_argument("--json", action="store_true", help="one JSON object per line with partition/offset/headers")
    t.add_argument("--max", type=int, default=0, help="stop after N records (0 = follow until Ctrl-C)")
    t.add_argument("--idle-exit", type=float, default=0.0, help="stop after S seconds without a record")
    t.set_defaults(func=cmd_tail)


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def cmd_tail(args: argparse.Namespace, settings: Settings) -> int:
    from confluent_kafka import Consumer

    from botstream.core.codec import codec_for
    from botstream.core.kafka import consumer_config
    from botstream.schemas.errors import DecodeError

    topic = args.topic if "." in args.topic and args.topic.startswith(settings.topic_prefix) else settings.topic(args.topic)
    codec = codec_for(settings)
    consumer = Consumer(consumer_config(settings, f"tail-{uuid.uuid4().hex[:8]}", **{
        "auto.offset.reset": "earliest" if args.from_beginning else "latest"}))
    consumer.subscribe([topic])
    seen = 0
    last = time.monotonic()
    try:
        while not args.max or seen < args.max:
            msg = consumer.poll(0.5)
            if msg is None:
                if args.idle_exit and time.monotonic() - last > args.idle_exit:
                    break
                continue
            if msg.error():
                continue
            last = time.monotonic()
            try:
                name, record = codec.decode_any(msg.value() or b"")
                value: Any = {"schema": name, **jsonable(record)}
            except DecodeError as exc:
                value = {"undecodable": exc.reason, "raw": jsonable(msg.value())}
            if args.json:
                out = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                       "timestamp_ms": msg.timestamp()[1], "key": jsonable(msg.key()),
                       "headers": {k: jsonable(v) for k, v in _header_items(msg.headers())}, "value": value}
            else:
                out = value
            sys.stdout.write(json.dumps(out, default=str) + "\n")
            sys.stdout.flush()
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def _header_items(headers: Any) -> list[tuple[str, Any]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)
