"""What the ingest bench measures, each run in its own process pinned to the server CPU:

- `bare`: the same server stack (uvicorn + httptools + uvloop) answering 200 after reading the body;
  the HTTP ceiling nothing built on this stack can beat.
- `ingest`: the real app (`botstream.ingest.server.build_app`), JSON access log and metrics included.
- `ingest-no-kafka`: the same app with a sink that acknowledges at once: what the HTTP handling,
  verification, normalization, encoding, logging and metrics cost without the producer.
- `naive`, `naive-blocking`: the real app with `NaiveSink`, a flush per request instead of the poll
  thread and per-request futures.
- `kafka_ceiling`: confluent-kafka producing the same encoded records with the same settings and a
  delivery callback per record, as fast as it can, without HTTP: the broker-side ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from bench.ingest.loadgen import body

SERVER_CPU, LOADER_CPU = 0, 1
MAX_OUTSTANDING = 5000


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


class NaiveSink:
    """What a first attempt at "ack only when durable" looks like: produce, then flush the producer
    for every request (`await asyncio.to_thread(producer.flush)`, or a plain blocking
    `producer.flush()`). Plugged into the real app, so the comparison isolates the acknowledgement
    strategy: the HTTP handling, verification, encoding, log line and metrics are identical."""

    def __init__(self, blocking: bool) -> None:
        from confluent_kafka import Producer

        from botstream.core.settings import Settings
        from botstream.ingest.producer import ingest_producer_config

        self.producer = Producer(ingest_producer_config(Settings.from_env()))
        self.blocking = blocking

    async def produce_all(self, records: Any) -> None:
        from botstream.ingest.sink import NotDurable

        errors: list[Any] = []
        for record in records:
            self.producer.produce(record.topic, record.value, record.key, headers=record.headers,
                                  on_delivery=lambda err, _msg: errors.append(err) if err else None)
        if self.blocking:
            self.producer.flush(5)
        else:
            await asyncio.to_thread(self.producer.flush, 5)
        if errors:
            raise NotDurable("delivery_failed")

    def status(self) -> Any:
        from botstream.ingest.sink import SinkStatus

        return SinkStatus(alive=True, ready=True)


class AckAtOnce:
    """A RecordSink that acknowledges every record immediately (the ingest-no-kafka decomposition)."""

    async def produce_all(self, records: Any) -> None:
        return None

    def status(self) -> Any:
        from botstream.ingest.sink import SinkStatus

        return SinkStatus(alive=True, ready=True)


def serve(kind: str, port: int, overrides: dict[str, Any]) -> None:
    import uvicorn

    from botstream.core.logs import setup_logging
    from botstream.core.settings import Settings
    from botstream.ingest.server import build_app, load_bots, tune_for_serving, uvicorn_config

    pin(SERVER_CPU)
    settings = Settings.from_env()
    setup_logging("ingest", settings.log_level, settings.log_format)
    if kind == "bare":
        app: Any = bare_app
    elif kind == "ingest":
        app = build_app(settings, load_bots(settings), producer_overrides=overrides)
    elif kind == "ingest-no-kafka":
        app = build_app(settings, load_bots(settings), sink=AckAtOnce())
    else:
        app = build_app(settings, load_bots(settings), sink=NaiveSink(blocking=kind == "naive-blocking"))
    tune_for_serving()  # the same process settings for every server measured
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run()


def kafka_ceiling(seconds: float, overrides: dict[str, Any]) -> dict[str, float]:
    """Produce pre-encoded Update records flat out; every one acknowledged, counted by callback."""
    from confluent_kafka import Producer

    from botstream.core.settings import Settings
    from botstream.ingest.platforms.base import RequestContext
    from botstream.ingest.platforms.telegram import normalize_telegram_update
    from botstream.ingest.producer import ingest_producer_config
    from botstream.schemas.codec import Codec
    from botstream.schemas.headers import CORRELATION_ID, PLATFORM, TRACEPARENT
    from botstream.schemas.records import chat_key

    pin(SERVER_CPU)
    settings = Settings.from_env()
    topic = settings.topic("updates")
    codec = Codec()
    records = []
    for update_id in range(50_000_000, 50_020_000):
        raw = body(update_id)
        ctx = RequestContext("telegram", "bench", raw, int(time.time() * 1000), os.urandom(16).hex())
        [update] = normalize_telegram_update(ctx, json.loads(raw))
        key = chat_key("telegram", "bench", update["chat_id"]).encode()
        headers = [(CORRELATION_ID, update["correlation_id"].encode()), (PLATFORM, b"telegram"),
                   (TRACEPARENT, b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        records.append((codec.encode("update", update), key, headers))
    producer = Producer(ingest_producer_config(settings, **overrides))
    acked = failed = 0

    def delivered(err: Any, _msg: Any) -> None:
        nonlocal acked, failed
        if err is None:
            acked += 1
        else:
            failed += 1

    producer.list_topics(topic, timeout=10)
    cpu0 = time.process_time()
    started = time.monotonic()
    stop_at = started + seconds
    sent = 0
    while time.monotonic() < stop_at:
        if sent - acked - failed >= MAX_OUTSTANDING:  # as many in flight as a busy ingest, not a backlog
            producer.poll(0.001)  # that would outlive message.timeout.ms
            continue
        value, key, headers = records[sent % len(records)]
        producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
        sent += 1
        if sent % 256 == 0:
            producer.poll(0)
    producer.flush(30)
    elapsed = time.monotonic() - started
    return {"acked": acked, "failed": failed, "seconds": elapsed, "rate": acked / elapsed,
            "cpu_seconds": time.process_time() - cpu0}


def main(argv: list[str]) -> int:
    overrides = json.loads(os.environ.get("BENCH_PRODUCER_OVERRIDES", "{}"))
    if argv[0] == "serve":
        serve(argv[1], int(argv[2]), overrides)
    elif argv[0] == "kafka":
        print(json.dumps(kafka_ceiling(float(argv[1]), overrides)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
