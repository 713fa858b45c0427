"""The per-record path of a stateful worker, around Faust: batches in, chats in order, one checkpoint
per interval.

Faust consumes (group membership, assignment, fetching) and hands each agent its events; the rest is
here, and none of it costs a Kafka round trip per record:

    channel batch ─▶ OffsetTracker.started ─▶ ChatRunner (eager; a task only for a chat that waits)
                                                  └─ step(event, state view) ─▶ OutputProducer.produce
    every `checkpoint_interval_s`:
        done prefix per input partition ─▶ PartitionStore.prepare (one changelog record per dirty key)
        ─▶ flush outputs + changelog (acks=all; a failure crashes the worker, nothing is committed)
        ─▶ ack the events ─▶ commit their offsets ─▶ PartitionStore.persist (one WriteBatch)

Rules it keeps:
- **chat order**: one chat's events run one after another, whatever input topic they came from;
- **ordered acknowledgement**: an offset is committed only when every earlier event of its
  partition is done (`OffsetTracker`), with chats running concurrently;
- **never commit what is not durable**: outputs and changelog records are acknowledged by the
  broker before the offsets that caused them are committed;
- **state before its input**: a partition's events wait until its state is restored
  (`botstream.core.state.restore`, bulk, in a thread), other partitions go on;
- **rebalances**: as one starts, no new event is started; when partitions are revoked the worker
  lets running steps finish (bounded), checkpoints, and closes the revoked partitions' stores.
  Unfinished events are given back unacknowledged: their next owner processes them again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import (
    Callable,
    Coroutine,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Consumer
from faust.types import TP

from botstream.core.chats import ChatRunner
from botstream.core.faust_app import WorkerApp, channel_batches
from botstream.core.generation import Abandoned, Generation
from botstream.core.ordering import OffsetTracker
from botstream.core.producer import DeliveryFailed, OutputProducer
from botstream.core.state.checkpoint import Checkpointer
from botstream.core.state.restore import Derive, committed_offsets, restore_partition
from botstream.core.state.store import PartitionStore, StoreOptions, TableSpec

__all__ = ["Lane", "RuntimeOptions", "StateView", "StatefulRuntime", "TableMapping"]

log = logging.getLogger(__name__)


class StateView:
    """The tables as the event at (`topic`, `offset`) sees them; its writes are tagged with that position."""

    __slots__ = ("_store", "_topic", "_offset")

    def __init__(self, store: PartitionStore, topic: str, offset: int) -> None:
        self._store = store
        self._topic = topic
        self._offset = offset

    def get(self, table: str, key: bytes, default: Any = None) -> Any:
        return self._store.get(table, key, default)

    def put(self, table: str, key: bytes, value: Any) -> None:
        self._store.put(table, key, value, self._topic, self._offset)

    def delete(self, table: str, key: bytes) -> None:
        self._store.delete(table, key, self._topic, self._offset)

    def put_fact(self, table: str, key: bytes, value: Any) -> None:
        self._store.put_fact(table, key, value)

    def table(self, name: str) -> TableMapping:
        """One table of this view as a mapping (for code written against dict-like tables)."""
        return TableMapping(self, name)


class TableMapping(MutableMapping[bytes, Any]):
    """A table of a `StateView` as a mapping. Keys are not listed (no `iter`/`len`): scans read the
    partition's database (`PartitionStore.scan`)."""

    __slots__ = ("_view", "_table")

    def __init__(self, view: StateView, table: str) -> None:
        self._view = view
        self._table = table

    def __getitem__(self, key: bytes) -> Any:
        value = self._view.get(self._table, key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: Any = None) -> Any:
        return self._view.get(self._table, key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self._view.get(self._table, key) is not None

    def __setitem__(self, key: bytes, value: Any) -> None:
        self._view.put(self._table, key, value)

    def __delitem__(self, key: bytes) -> None:
        self._view.delete(self._table, key)

    def write_fact(self, key: bytes, value: Any) -> None:
        self._view.put_fact(self._table, key, value)

    def __iter__(self) -> Iterator[bytes]:
        raise TypeError("a table view does not list its keys; scan the partition's store")

    def __len__(self) -> int:
        raise TypeError("a table view does not count its keys; scan the partition's store")


@dataclass(frozen=True)
class Lane:
    """A chat runner of the worker: inputs in one lane share its chat order and its bounds.

    `max_busy`: chats waiting on something at once before the intake waits; `own_task`: steps run as
    tasks of their own from their first line (see `botstream.core.chats`)."""

    name: str = "main"
    max_busy: int = 64
    own_task: bool = False


@dataclass(frozen=True)
class RuntimeOptions:
    checkpoint_interval_s: float = 0.1
    max_batch: int = 2000
    max_in_flight: int = 20_000
    max_busy_chats: int = 64
    drain_timeout_s: float = 10.0
    flush_timeout_s: float = 30.0


@dataclass
class _Partition:
    store: PartitionStore
    ready: asyncio.Future[None]
    stop: threading.Event = field(default_factory=threading.Event)
    restore: asyncio.Task[None] | None = None


Step = Callable[[Any, StateView | None, int], Coroutine[Any, Any, None]]


class Taken:
    """An event as the runtime took it: the event, and the generation it was taken in (a rebalance
    or a stop starts a new one; events of an older one are given back, never acknowledged)."""

    __slots__ = ("event", "generation")

    def __init__(self, event: Any, generation: int) -> None:
        self.event = event
        self.generation = generation


@dataclass
class StatefulRuntime:
    """One worker's intake, chat runner, state stores and checkpoints (see the module docstring).

    `step(event, view)` is the stage's work for one event; `view` is None for an input that has no
    state (`stateful_topics` says which topics have). `chat_of(event)` names the event's chat.
    """

    app: WorkerApp
    name: str
    step: Step
    chat_of: Callable[[Any], str]
    tables: Sequence[TableSpec]
    state_dir: Path
    outputs: OutputProducer
    changelog: OutputProducer
    restore_consumer: Callable[[], Consumer]
    stateful_topics: Sequence[str]
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    store_options: StoreOptions = field(default_factory=StoreOptions)
    derive: Derive | None = None
    on_checkpoint: Callable[[float], None] | None = None
    on_restored: Callable[[int, float], None] | None = None
    lanes: Sequence[Lane] = ()
    lane_of: Callable[[str], str] | None = None  # input topic -> lane name (default: one lane)
    on_given_back: Callable[[], None] | None = None  # an event given back at a rebalance or a stop

    def __post_init__(self) -> None:
        self.positions: OffsetTracker[Any] = OffsetTracker()
        lanes = list(self.lanes) or [Lane(max_busy=self.options.max_busy_chats)]
        self.runners: dict[str, ChatRunner[Any]] = {
            lane.name: ChatRunner(self._run, self._done, max_busy=lane.max_busy, own_task=lane.own_task,
                                  given_back=self._given_back)
            for lane in lanes}
        self.generation = Generation()
        self._default_lane = lanes[0].name
        self._runner_of_topic: dict[str, ChatRunner[Any]] = {}
        self.partitions: dict[int, _Partition] = {}
        self._ready_to_ack: dict[tuple[str, int], list[Any]] = {}
        self._uncommitted: set[tuple[str, int]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._paused = False
        self._lock = asyncio.Lock()
        self.checkpointer = Checkpointer(
            outputs=self.outputs, changelog=self.changelog, flush_timeout_s=self.options.flush_timeout_s,
            changelog_topics=lambda: [t.changelog for t in self.tables if t.changelog is not None])
        self._checkpointer: asyncio.Task[None] | None = None
        self._closing: dict[int, asyncio.Task[None]] = {}
        self._stopping: asyncio.Task[None] | None = None
        self._stopped = False
        self.app.rebalance_start_callbacks.append(self._on_rebalance_start)
        # faust calls these as (sender, *args, signal=..., **kwargs)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    @property
    def in_flight(self) -> int:
        return self.positions.in_flight

    def ready(self) -> bool:
        """Every assigned partition's state is restored and no rebalance is under way (readiness)."""
        return bool(self.partitions) and not self._paused and all(
            p.ready.done() and not p.ready.cancelled() and p.ready.exception() is None
            for p in self.partitions.values())

    # -- intake (the agents' bodies) -----------------------------------------------------------------------
    async def consume(self, stream: Any) -> None:
        """An agent's body: take what arrived, start it, go on; wait when too much is unfinished."""
        if self._checkpointer is None:
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint_loop(),
                                                                      name=f"{self.name}-checkpoints")
        max_in_flight = self.options.max_in_flight
        async for batch in channel_batches(stream, self.options.max_batch):
            runner = None
            for event in batch:
                runner = self._submit(event) or runner
            self.outputs.poll()
            if self.positions.in_flight >= max_in_flight:
                self._room.clear()
                await self._room.wait()
            if runner is not None:
                await runner.wait_for_room()

    def runner_of(self, topic: str) -> ChatRunner[Any]:
        runner = self._runner_of_topic.get(topic)
        if runner is None:
            lane = self.lane_of(topic) if self.lane_of is not None else self._default_lane
            runner = self._runner_of_topic[topic] = self.runners[lane]
        return runner

    def _submit(self, event: Any) -> ChatRunner[Any] | None:
        msg = event.message
        if self._paused or msg.partition not in self.partitions:
            self._forget(event)  # between a rebalance's start and its assignment: not ours to start
            return None
        taken = Taken(event, self.generation.current)
        self.positions.started((msg.topic, msg.partition), msg.offset, taken)
        runner = self.runner_of(msg.topic)
        runner.submit(self.chat_of(event), taken)
        return runner

    async def _run(self, taken: Taken) -> None:
        self.generation.check(taken.generation)  # taken before a rebalance or a stop began: give it back
        event = taken.event
        msg = event.message
        part = self.partitions.get(msg.partition)
        if part is None:
            raise Abandoned(f"partition {msg.partition} is no longer ours")
        if not part.ready.done():
            await part.ready
            self.generation.check(taken.generation)
        view = StateView(part.store, msg.topic, msg.offset) if msg.topic in self.stateful_topics else None
        await self.step(event, view, taken.generation)

    def _done(self, taken: Taken) -> None:
        msg = taken.event.message
        tp = (msg.topic, msg.partition)
        ready = self.positions.complete(tp, msg.offset)
        if ready:
            pending = self._ready_to_ack.get(tp)
            if pending is None:
                self._ready_to_ack[tp] = ready
            else:
                pending.extend(ready)
            if not self._room.is_set() and self.positions.in_flight < self.options.max_in_flight:
                self._room.set()

    def _given_back(self, taken: Taken) -> None:
        if self.on_given_back is not None:
            self.on_given_back()

    def _forget(self, event: Any) -> None:
        """Let go of an event without acknowledging it: its offset is not committed, so the partition's
        next owner reads it again."""
        self.app.consumer.unacked.discard(event.message)

    # -- checkpoints ---------------------------------------------------------------------------------------
    async def _checkpoint_loop(self) -> None:
        interval = self.options.checkpoint_interval_s
        while not self._stopped:
            await asyncio.sleep(interval)
            try:
                await self.checkpoint()
            except DeliveryFailed as exc:
                log.error("output not acknowledged by the broker; stopping the worker: %s", exc)
                self._stopped = True
                await self.app.crash(exc)
                return
            except Exception as exc:  # noqa: BLE001 - a checkpoint that cannot be made must stop the worker
                log.exception("checkpoint failed; stopping the worker")
                self._stopped = True
                await self.app.crash(exc)
                return

    async def checkpoint(self) -> bool:
        """Make everything done so far durable and committed. True when offsets were committed."""
        async with self._lock:
            return await self._checkpoint()

    async def _checkpoint(self) -> bool:
        started = time.perf_counter()
        ready, self._ready_to_ack = self._ready_to_ack, {}
        if not ready and not self._uncommitted:
            return False
        committable: dict[int, dict[str, int]] = {}
        for (topic, partition), taken in ready.items():
            committable.setdefault(partition, {})[topic] = taken[-1].event.message.offset + 1

        def release() -> None:
            for taken in ready.values():
                for t in taken:
                    t.event.ack()
            self._uncommitted.update(ready)

        async def commit() -> bool:
            return bool(await self.app.consumer.commit({TP(t, p) for t, p in self._uncommitted}))

        stores = {p: part.store for p, part in self.partitions.items()}
        committed = await self.checkpointer.run(stores, committable, release=release, commit=commit)
        if committed:
            self._uncommitted.clear()
        if self.on_checkpoint is not None:
            self.on_checkpoint(time.perf_counter() - started)
        return committed

    # -- partitions ----------------------------------------------------------------------------------------
    def _on_rebalance_start(self) -> None:
        self._paused = True
        self.generation.bump()  # waits of events taken so far end now (their events are given back)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        for partition in sorted({tp.partition for tp in assigned}):
            if partition in self.partitions:
                continue
            closing = self._closing.pop(partition, None)
            if closing is not None:  # a restore of its previous ownership still holds the database
                await asyncio.gather(closing, return_exceptions=True)
            store = PartitionStore(self.state_dir / f"p{partition}", partition, self.tables, self.store_options)
            store.on_fact = self._produce_fact
            part = _Partition(store, loop.create_future())
            self.partitions[partition] = part
            part.restore = loop.create_task(self._restore(partition, part), name=f"{self.name}-restore-{partition}")
        self._paused = False

    def _produce_fact(self, write: Any, partition: int) -> None:
        self.changelog.produce(write.topic, write.value, write.key, partition=partition)

    async def _restore(self, partition: int, part: _Partition) -> None:
        try:
            started = time.perf_counter()
            report = await asyncio.to_thread(self._restore_blocking, partition, part)
            if part.stop.is_set():  # revoked while restoring: the store is ours to close
                part.store.close()
                return
            if report is not None:
                log.info("partition %d restored: %d changelog records read, %d applied, %d skipped (past the "
                         "committed offset) in %.2fs", partition, report.read, report.applied, report.skipped,
                         report.seconds, extra={"partition": partition})
            if self.on_restored is not None:
                self.on_restored(partition, time.perf_counter() - started)
            if not part.ready.done():
                part.ready.set_result(None)
        except Exception as exc:  # noqa: BLE001 - without its state a partition cannot be processed
            log.exception("restoring partition %d failed; stopping the worker", partition)
            if not part.ready.done():
                part.ready.set_exception(exc)
            await self.app.crash(exc)

    def _restore_blocking(self, partition: int, part: _Partition) -> Any:
        if not any(t.changelog for t in self.tables):
            return None
        consumer = self.restore_consumer()
        try:
            committed = committed_offsets(consumer, self.stateful_topics, partition)
            return restore_partition(part.store, consumer, committed, derive=self.derive, stop=part.stop)
        finally:
            consumer.close()

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        await self._settle(timeout=self.options.drain_timeout_s)
        for partition in {tp.partition for tp in revoked}:
            self._close(partition)

    async def _settle(self, timeout: float) -> None:  # noqa: ASYNC109
        """Let running steps finish (bounded), checkpoint, and give back what did not finish."""
        drained = await asyncio.gather(*(r.drain(timeout) for r in self.runners.values()))
        if not all(drained):
            log.warning("%s: steps still running after %.0fs; giving their events back", self.name, timeout)
            await asyncio.gather(*(r.cancel_all() for r in self.runners.values()))
        try:
            await self.checkpoint()
        except DeliveryFailed as exc:
            log.error("output not acknowledged at a rebalance; stopping the worker: %s", exc)
            await self.app.crash(exc)

    def _close(self, partition: int) -> None:
        part = self.partitions.pop(partition, None)
        self.checkpointer.forget(partition)
        self._uncommitted = {tp for tp in self._uncommitted if tp[1] != partition}
        for topic in {t for t, p in list(self._ready_to_ack) if p == partition}:
            self._ready_to_ack.pop((topic, partition), None)
        for key in list(self._lanes_of(partition)):
            for taken in self.positions.forget(key):
                self._forget(taken.event)
        if part is None:
            return
        if not part.ready.done():
            part.ready.cancel()
        if part.restore is not None and not part.restore.done():
            part.stop.set()  # the restore thread stops at its next batch and closes the store
            self._closing[partition] = part.restore
            return
        part.store.close()

    def _lanes_of(self, partition: int) -> Iterable[Hashable]:
        return [key for key in self.positions.lanes() if cast(tuple[str, int], key)[1] == partition]

    async def _on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Finish (bounded), checkpoint, close the stores and the producers; once, whoever asks first."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        self._stopped = True
        self.generation.bump()
        await self._settle(timeout=self.options.drain_timeout_s)
        for partition in list(self.partitions):
            self._close(partition)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
        self.outputs.close()
        self.changelog.close()

    def owned(self) -> Mapping[int, _Partition]:
        return self.partitions
