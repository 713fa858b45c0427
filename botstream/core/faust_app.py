"""The Faust app both workers (streams, sinks) are built on: aiokafka driver, its consumer and group
membership, partition assignment, the worker lifecycle and the web server.

Faust stays the runtime; two of its per-message costs do not (measured on the development machine,
a consume-only agent: ~9,600 events per CPU-second as shipped, ~60,000 with both changes and the
agent reading its channel directly, see `channel_batches`):

- `_drain_messages` hands each message to the conductor through `wait_first(callback, suspend_flow)`:
  two tasks and an `asyncio.wait` per message. `EagerDrainConsumer` runs the callback eagerly
  (`botstream.core.eager`) and falls back to exactly that `wait_first` only when the callback has
  to wait (a full buffer, suspended flow), so rebalances interrupt it as before;
- the `Monitor` sensor keeps per-message statistics for Faust's own web views, which botstream does
  not serve (its metrics are Prometheus); `QuietMonitor` keeps the rest of the Monitor but not the
  per-message bookkeeping.

One per-record cost is the broker's: Faust's fetches ask for one byte, so at a few hundred updates a
second each record costs a fetch. `FetchPacing` lets fetches gather a batch while records flow
(`BOTSTREAM_FETCH_BATCH_WAIT_MS`) and long-polls when idle.

`worker_app(..., own_commits=True)` is for workers that commit their offsets themselves, after
their checkpoint (`botstream.core.runtime`): Faust's periodic commit and its wait for every
delivered event at a rebalance are turned off, since the worker does both in its own order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.sensors import Monitor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from botstream.core.eager import run_eagerly
from botstream.core.kafka import bootstrap_servers
from botstream.core.settings import Settings

__all__ = ["FetchPacing", "WorkerApp", "pace_fetcher", "add_metrics_page", "add_readiness_page", "channel_batches", "faust_app", "run_faust_worker",
           "worker_app"]

YIELD_EVERY = 100  # messages handed on before the drain loop lets other tasks run


@dataclass(slots=True)
class FetchPacing:
    """How long the broker may hold a worker's next fetch, decided from what the last one brought.

    Kafka answers a fetch once `min_bytes` are there or `max_wait_ms` has passed. Faust asks for one
    byte, so while updates trickle in (hundreds a second over a few partitions) every fetch comes back
    with one or two records and each record pays a whole fetch on both sides: the request, the
    response's parsing, the broker's work. While records flow (the last fetch brought some), the next
    fetch asks for far more than arrives in `batch_wait_ms`, so it returns after that wait with
    everything that came meanwhile; once a fetch comes back empty the consumer is idle and goes back to
    the long poll that returns at the first byte, so an idle worker costs nothing and the first update
    after a pause waits for nothing. `batch_wait_ms = 0` keeps Faust's one-byte fetches.

    One exception to the long poll: aiokafka leaves out of a fetch every partition whose records the
    worker has not taken yet, and sends nothing else to that broker while a fetch is out. A long poll
    over only the other partitions (say the quiet `deliveries` or retry topics, while a big batch of
    updates is still being worked through) would keep the busy partitions from being fetched for up to
    `idle_wait_ms` once the worker is done, and the next batch would be that much bigger: a standing
    delay of about a second the worker never caught up with. While records are still held
    (`buffered`), a fetch waits at most `batch_wait_ms`.
    """

    batch_wait_ms: int
    idle_wait_ms: int = 1500  # Faust's fetch_max_wait_ms
    batch_min_bytes: int = 1 << 20

    def limits(self, flowing: bool, buffered: bool = False) -> tuple[int, int]:
        """(fetch_min_bytes, fetch_max_wait_ms) of the next fetch: `flowing` when the last fetch brought
        records, `buffered` when fetched records of some partition are still waiting to be taken."""
        if (flowing or buffered) and self.batch_wait_ms > 0:
            return self.batch_min_bytes, self.batch_wait_ms
        return 1, self.idle_wait_ms


def pace_fetcher(fetcher: Any, pacing: FetchPacing) -> None:
    """Pace an aiokafka `Fetcher`: every fetch request takes its min bytes and max wait from the
    fetcher's `_fetch_min_bytes`/`_fetch_max_wait_ms` when `_get_actions_per_node` builds it; they are
    set just before, from whether the last response brought records (`_proc_fetch_request`'s result)
    and whether fetched records are still held (`_records`)."""
    proc = fetcher._proc_fetch_request
    build = fetcher._get_actions_per_node
    flowing = False

    async def paced(assignment: Any, node_id: Any, request: Any) -> bool:
        nonlocal flowing
        had_records = bool(await proc(assignment, node_id, request))
        flowing = had_records
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = pacing.limits(flowing, bool(fetcher._records))
        return had_records

    def actions(assignment: Any) -> Any:
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = pacing.limits(flowing, bool(fetcher._records))
        return build(assignment)

    fetcher._proc_fetch_request = paced
    fetcher._get_actions_per_node = actions


class PacedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its aiokafka fetcher paced by the app's `fetch_pacing`."""

    async def on_start(self) -> None:
        await super().on_start()
        pacing: FetchPacing | None = getattr(self.app, "fetch_pacing", None)
        fetcher = getattr(self._consumer, "_fetcher", None)
        if pacing is not None and pacing.batch_wait_ms > 0 and fetcher is not None:
            pace_fetcher(fetcher, pacing)


class EagerDrainConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, handing messages to the conductor without two tasks per message."""

    def _new_consumer_thread(self) -> Any:
        return PacedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs inside Faust's fetcher
        callback = self.callback
        read_offset = self._read_offset
        consumer_stopped = cast(Any, self)._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        since_yield = 0
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                set_flag(CONSUMER_FETCHING)
                messages = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                async for tp, message in messages:
                    since_yield += 1
                    if since_yield > YIELD_EVERY:
                        await asyncio.sleep(0)
                        since_yield = 0
                    offset = message.offset
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue  # already seen (a seek went back): Faust drops these too
                    if last and offset - last > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, offset)  # compacted / transactional gaps
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    done, rest = run_eagerly(callback(message))
                    if not done:
                        await self.wait_first(cast(Awaitable[Any], rest), self.suspend_flow.wait())
                    read_offset[tp] = offset
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class EagerDrainTransport(faust_aiokafka.Transport):
    Consumer = EagerDrainConsumer


class QuietMonitor(Monitor):
    """Faust's Monitor without its per-message and per-event statistics (Faust's web views only)."""

    def on_message_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event_out(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_message_out(self, *args: Any, **kwargs: Any) -> None:
        return None

    def track_tp_end_offset(self, *args: Any, **kwargs: Any) -> None:
        return None


class WorkerApp(faust.App):
    """`faust.App` with the eager-drain transport and rebalance-start callbacks."""

    def __init__(self, *args: Any, fetch_pacing: FetchPacing | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rebalance_start_callbacks: list[Callable[[], None]] = []
        self.fetch_pacing = fetch_pacing

    def _new_transport(self) -> Any:
        return EagerDrainTransport(self.conf.broker_consumer, self)

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        for callback in self.rebalance_start_callbacks:
            callback()


def worker_app(settings: Settings, app_id: str, web_port: int, datadir_name: str, *,
               own_commits: bool = False) -> WorkerApp:
    """A worker's Faust app on the project's settings.

    Kafka security is the client layer's (`botstream.core.kafka.faust_credentials`: the protocol,
    SASL mechanism and user, CA and client certificate librdkafka gets too), checked against the
    broker before Faust starts, so wrong credentials or an untrusted certificate end the process at
    once with one line naming the setting (Faust's client would retry them for ever).

    The web server listens on `BOTSTREAM_WEB_HOST` (Faust binds `web_bind`, 0.0.0.0 by default;
    `web_host` only names the server) and serves `/metrics`, the readiness page the worker adds and
    Faust's plain index; Faust's table and router views (`/table/<name>/<key>/` returns table data)
    only with `BOTSTREAM_WEB_TABLE_VIEWS`, and its statistics, graph and performance views never.
    Faust's own environment variables for these (WEB_BIND, APP_WEB_*_ENABLED, BROKER_CREDENTIALS),
    which it would prefer to what is passed here, are not read.
    """
    import logging
    import os

    from botstream.core.kafka import check_access, faust_credentials

    bootstrap = bootstrap_servers(settings)
    credentials, ssl_context = faust_credentials(settings)
    if not check_access(settings, bootstrap=bootstrap):
        logging.getLogger(__name__).warning(
            "Kafka at %s did not answer in time to check the security settings; starting anyway", bootstrap)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ours = ("WEB_BIND", "APP_WEB_TABLES_ENABLED", "APP_WEB_ROUTER_ENABLED", "APP_WEB_STATS_ENABLED",
            "APP_WEB_GRAPH_ENABLED", "APP_WEB_METRICS_ENABLED", "BROKER_CREDENTIALS")
    faust_env = {k: v for k, v in os.environ.items() if not any(k == n or k.endswith("_" + n) for n in ours)}
    views = settings.web_table_views
    commits: dict[str, Any] = {"broker_commit_interval": 0.5, "stream_wait_empty": True}
    if own_commits:
        # The worker commits after each checkpoint; Faust's timer would commit in between.
        commits = {"broker_commit_interval": 3600.0, "broker_commit_every": 1 << 40, "stream_wait_empty": False}
    return WorkerApp(
        app_id,
        broker=",".join(f"kafka://{b}" for b in bootstrap.split(",")),
        store="rocksdb://",
        datadir=str(settings.data_dir / datadir_name),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=web_port,
        web_tables_enabled=views,
        web_router_enabled=views,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        broker_credentials=credentials,
        ssl_context=ssl_context,
        env=faust_env,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # A killed worker's partitions move after this, not faust's default 60 s.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        table_cleanup_interval=3600.0,
        web_enabled=True,
        key_serializer="raw",
        value_serializer="raw",
        Monitor=QuietMonitor,
        fetch_pacing=FetchPacing(settings.fetch_batch_wait_ms),
        **commits,
    )


faust_app = worker_app


async def channel_batches(stream: Any, max_batch: int) -> AsyncIterator[list[Any]]:
    """The events an agent's stream receives, in batches of what has arrived (up to `max_batch`),
    read from the stream's channel queue: no Stream machinery per event (current-event context,
    per-event sensors, acking processors). The caller acknowledges each event itself."""
    queue = stream.channel.queue
    get, get_nowait, empty = queue.get, queue.get_nowait, queue.empty
    while True:
        try:
            batch = [await get()]
            while len(batch) < max_batch and not empty():
                batch.append(get_nowait())
        except StopAsyncIteration:  # Faust ends the channel (the agent is stopping)
            return
        yield batch


async def metrics_page(view: Any, request: Any) -> Any:
    """Prometheus exposition. A plain function: Faust makes it the `get` method of a View class, so it
    is called with the view (a bound method would lose the view and fail every request)."""
    return view.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def add_metrics_page(app: faust.App) -> None:
    app.page("/metrics")(metrics_page)


def add_readiness_page(app: faust.App, ready: Callable[[], bool]) -> None:
    """`GET /ready`: 200 once the worker holds partitions and their state is restored, else 503
    (what a load balancer or Kubernetes readiness probe asks before counting the worker in)."""

    async def readiness(view: Any, request: Any) -> Any:
        ok = ready()
        return view.json({"ready": ok}, status=200 if ok else 503)

    app.page("/ready")(readiness)


def run_faust_worker(service: str, settings: Settings, build: Any) -> int:
    """Run one Faust worker process: our JSON logs and tracing, then faust's worker lifecycle (signals,
    graceful stop). `build(settings, bots)` returns an object with the `.app` to run."""
    from faust.worker import Worker

    from botstream.core.bots import load_service_bots
    from botstream.core.gctune import tune_gc
    from botstream.core.logs import quiet_faust_worker, setup_logging
    from botstream.core.tracing import configure as configure_tracing

    setup_logging(service, settings.log_level, settings.log_format)
    configure_tracing(service)
    worker_app = build(settings, load_service_bots(settings))
    worker = quiet_faust_worker(Worker(worker_app.app, loglevel=settings.log_level.lower(), override_logging=False,
                                       redirect_stdouts=False))
    tune_gc()
    worker.execute_from_commandline()
    return 0
