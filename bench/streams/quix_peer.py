"""The streams worker's workload in Quix Streams: the peer the streams bench measures it against.

Runs with the Python of its own virtualenv (`bench.streams.quix_env`: quixstreams and fastavro as
pinned in `bench/streams/quix-requirements.txt`), never the project's: quixstreams pins a
confluent-kafka older than ours. So this file imports nothing from botstream; the bench hands it
everything it needs on the command line.

Per `updates` record (the Avro `Update`s the bench produced, single-object encoded: 2-byte marker,
8-byte schema fingerprint, Avro body):

1. decode (`fastavro.schemaless_reader`, schema from `schemas/update.avsc`);
2. dedupe, stateful (state per message key, i.e. per chat): `seen:<platform>:<bot>:<update id>` →
   first-seen time (ms), written with a state TTL of the window; a known id seen inside the window is a
   platform redelivery and is dropped;
3. a per-chat counter, stateful (`count`);
4. an echo reply (`echo: <text>`, the update id it answers, the chat's count), produced as JSON to the
   sink topic, keyed by the chat key.

At-least-once, commit interval as the bench says (the worker's checkpoint interval), producer settings
like the worker's output producer (idempotent, acks=all, lz4, same linger). Stops on SIGTERM (Quix
commits what it processed) and prints one JSON line with its counts.

    <quix venv>/bin/python bench/streams/quix_peer.py --bootstrap B --source T --sink T2 --group G \
        --state-dir D --schema schemas/update.avsc [--commit-interval 0.1] [--window-s 604800]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import fastavro

SINGLE_OBJECT_MARKER = b"\xc3\x01"
HEADER_SIZE = 10  # marker + CRC-64-AVRO fingerprint


class StateLike(Protocol):
    """What the steps use of `quixstreams.State`."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, ttl: timedelta | None = None) -> None: ...


def decoder(schema_path: Path, counts: dict[str, int]) -> Callable[[bytes], dict[str, Any]]:
    schema = fastavro.parse_schema(json.loads(schema_path.read_text()))

    def decode(value: bytes) -> dict[str, Any]:
        counts["consumed"] += 1
        if value[:2] != SINGLE_OBJECT_MARKER:
            raise ValueError("not a single-object encoded Avro record")
        return fastavro.schemaless_reader(io.BytesIO(value[HEADER_SIZE:]), schema)  # type: ignore[return-value]

    return decode


def dedupe(window_s: int, counts: dict[str, int]) -> Callable[[dict[str, Any], StateLike], bool]:
    """Keep an update unless its id was first seen less than `window_s` ago (in this chat's state)."""
    window_ms, ttl = window_s * 1000, timedelta(seconds=window_s)

    def first_seen(update: dict[str, Any], state: StateLike) -> bool:
        key = f"seen:{update['platform']}:{update['bot_id']}:{update['update_id']}"
        now_ms = int(time.time() * 1000)
        seen = state.get(key)
        if seen is not None and now_ms - seen <= window_ms:
            counts["dropped"] += 1
            return False
        state.set(key, now_ms, ttl=ttl)
        return True

    return first_seen


def echo(counts: dict[str, int]) -> Callable[[dict[str, Any], StateLike], dict[str, Any]]:
    """Count the chat's updates (state) and answer `echo: <text>`."""

    def reply(update: dict[str, Any], state: StateLike) -> dict[str, Any]:
        n = state.get("count", 0) + 1
        state.set("count", n)
        counts["replies"] += 1
        return {"chat_id": update["chat_id"], "bot_id": update["bot_id"], "causation_id": update["update_id"],
                "correlation_id": update["correlation_id"], "text": f"echo: {update['text']}", "count": n}

    return reply


def main(argv: list[str] | None = None) -> int:
    from quixstreams import Application  # only in the peer's own virtualenv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--schema", required=True, type=Path)
    parser.add_argument("--commit-interval", type=float, default=0.1)
    parser.add_argument("--window-s", type=int, default=7 * 24 * 3600)
    parser.add_argument("--linger-ms", type=int, default=5)
    args = parser.parse_args(argv)

    counts = {"consumed": 0, "dropped": 0, "replies": 0}
    app = Application(
        broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
        commit_interval=args.commit_interval, processing_guarantee="at-least-once", state_dir=args.state_dir,
        loglevel="INFO", use_changelog_topics=True,
        producer_extra_config={"enable.idempotence": True, "acks": "all", "compression.type": "lz4",
                               "linger.ms": args.linger_ms},
    )
    source = app.topic(args.source, key_deserializer="bytes", value_deserializer="bytes")
    sink = app.topic(args.sink, key_serializer="bytes", value_serializer="json")
    sdf = app.dataframe(source)
    sdf = sdf.apply(decoder(args.schema, counts))
    sdf = sdf.filter(dedupe(args.window_s, counts), stateful=True)
    sdf = sdf.apply(echo(counts), stateful=True)
    sdf.to_topic(sink)
    started = time.time()
    app.run()
    print(json.dumps({"quix_peer": counts, "ran_s": round(time.time() - started, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
