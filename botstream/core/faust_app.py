"""The Faust app both workers (streams, sinks) are built on: aiokafka driver, RocksDB via rocksdict."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from botstream.core.kafka import bootstrap_servers
from botstream.core.settings import Settings


def faust_app(settings: Settings, app_id: str, web_port: int, datadir_name: str) -> faust.App:
    bootstrap = bootstrap_servers(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=",".join(f"kafka://{b}" for b in bootstrap.split(",")),
        store="rocksdb://",
        datadir=str(settings.data_dir / datadir_name),
        web_host=settings.web_host,
        web_port=web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        # A killed worker's partitions move after this, not faust's default 60 s.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,  # bounds what a crash makes us redo (ids are deterministic anyway)
        table_cleanup_interval=3600.0,
        stream_wait_empty=True,
        web_enabled=True,
        key_serializer="raw",
        value_serializer="raw",
    )


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    # faust's default block cache is 2 GiB per partition DB; many partitions on a small machine need
    # it small (DESIGN.md §5).
    return {"driver": "rocksdict", "block_cache_size": settings.rocksdb_block_cache_bytes,
            "write_buffer_size": settings.rocksdb_write_buffer_bytes, "max_write_buffer_number": 2}


async def metrics_page(view: Any, request: Any) -> Any:
    """Prometheus exposition. A plain function: Faust makes it the `get` method of a View class, so it
    is called with the view (a bound method would lose the view and fail every request)."""
    return view.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def add_metrics_page(app: faust.App) -> None:
    app.page("/metrics")(metrics_page)


def run_faust_worker(service: str, settings: Settings, build: Any) -> int:
    """Run one Faust worker process: our JSON logs and tracing, then faust's worker lifecycle (signals,
    graceful stop). `build(settings, bots)` returns an object with the `.app` to run."""
    from faust.worker import Worker

    from botstream.core.bots import load_service_bots
    from botstream.core.logs import setup_logging
    from botstream.core.tracing import configure as configure_tracing

    setup_logging(service, settings.log_level, settings.log_format)
    configure_tracing(service)
    worker_app = build(settings, load_service_bots(settings))
    worker = Worker(worker_app.app, loglevel=settings.log_level.lower(), override_logging=False,
                    redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
