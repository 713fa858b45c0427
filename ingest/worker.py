"""`botstream ingest`: run the ingest service, in one process or N sharing one port.

The parent validates what every worker needs before anything listens (the bots file, a reachable
bootstrap address), so a bad configuration fails once, loudly, instead of N workers crash-looping.

With `--workers N` uvicorn binds the socket in the parent and spawns N workers that accept on it;
the parent only supervises (it restarts a worker that dies). Ingest keeps no state, so any worker
can answer any request. Before spawning, the parent points every worker at one metrics folder
(prometheus_client multiprocess mode, see `botstream.ingest.metrics`) and at the resolved bootstrap servers.
"""

from __future__ import annotations

import os
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from botstream.core.kafka import bootstrap_servers
from botstream.core.logs import setup_logging
from botstream.core.settings import Settings
from botstream.core.tracing import configure as configure_tracing
from botstream.ingest.metrics import MULTIPROC_ENV
from botstream.ingest.server import (
    APP_FACTORY,
    build_app,
    load_bots,
    tune_for_serving,
    uvicorn_config,
)


def run_ingest(settings: Settings, *, host: str | None = None, port: int | None = None,
               workers: int | None = None) -> int:
    setup_logging("ingest", settings.log_level, settings.log_format)
    configure_tracing("ingest")
    bots = load_bots(settings)
    bootstrap = bootstrap_servers(settings)
    host = host or settings.ingest_host
    port = settings.ingest_port if port is None else port
    workers = workers or settings.ingest_processes
    if workers <= 1:
        app = build_app(settings, bots)
        tune_for_serving()
        server = uvicorn.Server(uvicorn_config(app, host, port, settings=settings))
        server.run()
        return 0 if server.started else 1
    with tempfile.TemporaryDirectory(prefix="botstream-ingest-metrics-") as metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        config = uvicorn_config(APP_FACTORY, host, port, workers, settings=settings)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    return 0
