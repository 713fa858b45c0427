"""Wiring the ingest app to a real producer and serving it with uvicorn (httptools + uvloop).

Why uvicorn with httptools and uvloop: on this stack a bare ASGI app answering 200 serves ~24k
req/s on one core over loopback, against ~15k for aiohttp's own server with uvloop and ~4k for
uvicorn's pure-Python h11 parser (wrk, 64 connections; see the report in bench/ingest). The
webhook work per request is the same on any server, so the fastest bare stack leaves the most room.

`create_app` is the factory each worker process calls (`botstream ingest --workers N` hands uvicorn
an import string, and every spawned worker builds its own producer: librdkafka handles and threads
do not survive a fork, and workers share nothing but the listening socket).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn

from botstream.core.bots import BotRegistry, load_service_bots
from botstream.core.codec import codec_for
from botstream.core.gctune import tune_gc
from botstream.core.logs import setup_logging
from botstream.core.settings import Settings
from botstream.core.tracing import configure as configure_tracing
from botstream.ingest.app import Hook, IngestApp
from botstream.ingest.listener import ListenerLimits, listener_config
from botstream.ingest.metrics import IngestMetrics
from botstream.ingest.producer import KafkaSink, ingest_producer_config
from botstream.ingest.sink import RecordSink
from botstream.ingest.sizes import SizeContract
from botstream.schemas.codec import Codec

APP_FACTORY = "botstream.ingest.server:create_app"


def load_bots(settings: Settings) -> BotRegistry:
    """The bots file, with every credential registered for masking before anything is logged."""
    return load_service_bots(settings)


def build_codec(settings: Settings) -> Codec:
    """Ingest writes updates only: with a registry (and its auth, from the settings), that schema is
    registered now, not inside the first request."""
    return codec_for(settings, records=["update"])


def build_app(settings: Settings, bots: BotRegistry, *, sink: RecordSink | None = None,
              codec: Codec | None = None, producer_overrides: Mapping[str, Any] | None = None) -> IngestApp:
    """The app with its own KafkaSink (started and closed by the ASGI lifespan) unless one is given.

    `producer_overrides` exist for measuring alternatives (bench/ingest), not for deployments.
    """
    metrics = IngestMetrics()
    on_startup: list[Hook] = []
    on_shutdown: list[Hook] = []
    if sink is None:
        kafka = KafkaSink(ingest_producer_config(settings, **(producer_overrides or {})),
                          topic=settings.topic("updates"), ack_timeout_s=settings.ack_timeout_s,
                          metrics=metrics, min_insync_replicas=settings.min_insync_replicas)
        on_startup.append(kafka.start)
        on_shutdown.append(kafka.close)
        sink = kafka
    return IngestApp(bots=bots, sink=sink, updates_topic=settings.topic("updates"),
                     max_body_bytes=settings.max_body_bytes, codec=codec or build_codec(settings),
                     metrics=metrics, sizes=SizeContract.from_catalog(settings),
                     on_startup=on_startup, on_shutdown=on_shutdown)


def tune_for_serving() -> None:
    """Process-wide settings of a dedicated ingest process, for the per-request hot path:

    - logging skips the caller lookup (a stack walk per record) and the thread/process names: the
      JSON lines show none of them, and they were ~20 % of the per-request log call (23 -> 19 us);
    - the garbage collector is set for a service (`botstream.core.gctune`): what start-up built is
      frozen out of the collections, which run far less often.
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # documented switch: "avoid calling sys._getframe()"
    tune_gc()


def create_app() -> IngestApp:
    """uvicorn factory for worker processes: settings from the environment, like the parent's."""
    settings = Settings.from_env()
    setup_logging("ingest", settings.log_level, settings.log_format)
    configure_tracing("ingest")
    app = build_app(settings, load_bots(settings))
    tune_for_serving()
    return app


def listener_limits(settings: Settings) -> ListenerLimits:
    return ListenerLimits(header_timeout_s=settings.ingest_header_timeout_s,
                          body_timeout_s=settings.ingest_body_timeout_s,
                          max_header_bytes=settings.ingest_max_header_bytes,
                          max_connections=settings.ingest_max_connections)


def uvicorn_config(app: Callable[..., Any] | str, host: str, port: int, workers: int = 1,
                   settings: Settings | None = None) -> uvicorn.Config:
    """uvicorn serving `app` with httptools under the listener limits of `settings` (defaults when None;
    see `botstream.ingest.listener`). The keep-alive timeout defaults to 65 s, longer than common
    load-balancer idle timeouts (60 s), so they close first."""
    settings = settings or Settings()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=isinstance(app, str),
        http="httptools",
        loop="uvloop",
        ws="none",
        lifespan="on",
        log_config=None,  # keep our JSON logging; uvicorn's loggers propagate to it
        access_log=False,  # the app logs one richer line per request itself
        proxy_headers=False,  # client addresses are not used: skip that middleware on every request
        server_header=False,
        timeout_keep_alive=settings.ingest_keep_alive_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=10,
        backlog=4096,
    )
    return listener_config(config, listener_limits(settings))
