"""Faust's ceiling: a stateless agent that forwards each record's key and value, raw, to another topic.

Built on the same `faust_app()` as the streams worker (aiokafka driver, acks=all, commit interval,
RocksDB store configured but no tables) and run through the same `Worker` call, so the only
difference is the work per record. `send()` is not awaited to the broker's ack — the usual Faust
idiom, and the fastest the framework goes.

    python -m bench.streams.passthrough --source T --sink T2   (settings from the environment)
"""

from __future__ import annotations

import argparse
from typing import Any

import faust

from botstream.core.faust_app import faust_app
from botstream.core.logs import setup_logging
from botstream.core.settings import Settings

RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def passthrough_app(settings: Settings, source: str, sink: str) -> faust.App:
    app = faust_app(settings, f"{settings.topic_prefix}-bench-passthrough", settings.streams_web_port, "passthrough")
    src = app.topic(source, **RAW)
    dst = app.topic(sink, **RAW)

    async def forward(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await dst.send(key=event.key, value=event.value)

    app.agent(src, name=f"{settings.topic_prefix}-bench-forward")(forward)
    return app


def main() -> int:
    from faust.worker import Worker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    args = parser.parse_args()
    settings = Settings.from_env()
    setup_logging("bench-passthrough", settings.log_level, settings.log_format)
    app = passthrough_app(settings, args.source, args.sink)
    worker = Worker(app, loglevel=settings.log_level.lower(), override_logging=False, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
