"""Signed Telegram webhooks from an asyncio open-loop generator (raw HTTP/1.1 keep-alive), and the
checks that follow: which acknowledged update ended where, in what order, how many times.

Each update has a unique `update_id`, a chat out of `chats` and a per-chat sequence number; its text is
`m<chat>.<seq> u<update_id>`, so the echo bot's reply (`echo: m… u…`) names it in the sandbox's
deliveries. A chat's updates are sent one after the other (the next only after the previous one was
answered, as a platform does), so the order ingest saw is the order a chat expects its replies in.
Update i is due at start + i/rate whatever happened before (open loop); ACK latency is taken from the
due time (wrk2-style), so a stall is not hidden by a lower offered rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.e2e.topology import TG_SECRET, WEBHOOK_PATH

TEXT_RE = re.compile(r"m(\d+)\.(\d+) u(\d+)")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Update:
    uid: int
    chat: int
    seq: int
    due: float = 0.0
    sent_wall_ms: float = 0.0  # wall clock of the first send
    ack_ms: float | None = None  # due time -> first 2xx
    status: int = 0  # last status seen (0: transport error)
    attempts: int = 0

    @property
    def acked(self) -> bool:
        return 200 <= self.status < 300

    def body(self) -> bytes:
        return json.dumps({"update_id": self.uid, "message": {
            "message_id": self.uid, "date": int(time.time()), "chat": {"id": self.chat, "type": "private"},
            "from": {"id": self.chat, "is_bot": False, "language_code": "en"},
            "text": f"m{self.chat}.{self.seq} u{self.uid}"}}, separators=(",", ":")).encode()

    def request(self) -> bytes:
        payload = self.body()
        return (f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"X-Telegram-Bot-Api-Secret-Token: {TG_SECRET}\r\nX-Request-Id: u{self.uid}\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload


class Connections:
    """A pool of keep-alive connections that reconnects after errors (a killed ingest)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
        for _ in range(size):
            self.pool.put_nowait(None)

    async def exchange(self, data: bytes, timeout: float) -> int:  # noqa: ASYNC109 - per-read timeouts
        conn = await self.pool.get()
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), timeout)
            reader, writer = conn
            writer.write(data)
            status_line = await asyncio.wait_for(reader.readline(), timeout)
            length = 0
            close = False
            while (line := await asyncio.wait_for(reader.readline(), timeout)) not in (b"\r\n", b""):
                low = line.lower()
                if low.startswith(b"content-length:"):
                    length = int(line[15:])
                elif low.startswith(b"connection:") and b"close" in low:
                    close = True
            if length:
                await asyncio.wait_for(reader.readexactly(length), timeout)
            parts = status_line.split()
            if len(parts) < 2:
                raise ConnectionError("no status line")
            if close:
                writer.close()
                conn = None
            return int(parts[1])
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            if conn is not None:
                conn[1].close()
            conn = None
            return 0
        finally:
            self.pool.put_nowait(conn)

    def close(self) -> None:
        while not self.pool.empty():
            conn = self.pool.get_nowait()
            if conn is not None:
                conn[1].close()


@dataclass
class LoadRun:
    """One load phase; `updates` keeps every update it generated (acked or not)."""

    port: int
    chats: int = 1000
    first_id: int = 1
    redeliver: float = 0.0  # share of updates sent again (same update id) after their 2xx
    copies: int = 1  # >1: a retry storm, every update sent `copies` times concurrently
    retry_non_2xx_s: float = 0.0  # keep redelivering a non-2xx update this long (as a platform does)
    timeout_s: float = 10.0
    connections: int = 64
    seed: int = 1
    updates: list[Update] = field(default_factory=list)
    requests: int = 0
    non_2xx: Counter[int] = field(default_factory=Counter)
    _seq: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.next_id = self.first_id

    def _new_update(self) -> Update:
        chat = self.rng.randrange(self.chats) + 1
        self._seq[chat] += 1
        u = Update(self.next_id, chat, self._seq[chat])
        self.next_id += 1
        self.updates.append(u)
        return u

    async def _send(self, conns: Connections, u: Update, data: bytes) -> int:
        self.requests += 1
        status = await conns.exchange(data, self.timeout_s)
        if not 200 <= status < 300:
            self.non_2xx[status] += 1
        return status

    async def _deliver(self, conns: Connections, u: Update) -> None:
        lock = self._locks.setdefault(u.chat, asyncio.Lock())
        async with lock:  # one at a time per chat, in sequence order
            data = u.request()
            give_up = time.perf_counter() + self.retry_non_2xx_s
            backoff = 0.1
            while True:
                u.attempts += 1
                if not u.sent_wall_ms:
                    u.sent_wall_ms = time.time() * 1000
                statuses = await asyncio.gather(*(self._send(conns, u, data) for _ in range(self.copies)))
                ok = [s for s in statuses if 200 <= s < 300]
                u.status = ok[0] if ok else max(statuses)
                if ok:
                    u.ack_ms = (time.perf_counter() - u.due) * 1000
                    break
                if time.perf_counter() + backoff > give_up:
                    break
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        if u.acked and self.redeliver and self.rng.random() < self.redeliver:
            await asyncio.sleep(self.rng.uniform(0.05, 0.5))
            await self._send(conns, u, data)  # a platform redelivery after a lost 2xx: dedupe drops it

    async def open_loop(self, rate: float, seconds: float) -> float:
        """Offer `rate` updates/s for `seconds`; returns the wall seconds until every update was answered."""
        conns = Connections(self.port, self.connections)
        clock = time.perf_counter
        start = clock() + 0.05
        total = int(rate * seconds)
        tasks = []
        try:
            for i in range(total):
                u = self._new_update()
                u.due = start + i / rate
                delay = u.due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._deliver(conns, u)))
            await asyncio.gather(*tasks)
        finally:
            conns.close()
        return clock() - start

    async def closed_loop(self, seconds: float, workers: int) -> float:
        """Saturation: `workers` senders, each sending its next update when the previous one is answered."""
        conns = Connections(self.port, workers)
        clock = time.perf_counter
        start = clock()
        stop_at = start + seconds

        async def worker() -> None:
            while clock() < stop_at:
                u = self._new_update()
                u.due = clock()
                await self._deliver(conns, u)

        try:
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            conns.close()
        return clock() - start


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


# -- outcome ----------------------------------------------------------------------------------------

@dataclass
class Outcome:
    acked: int
    delivered: int  # acked updates with at least one reply in the sandbox
    failed_recorded: int  # acked, not delivered, but a non-delivered DeliveryResult or a DLQ record names them
    lost: list[int]
    duplicates: int  # replies delivered more than once (extra copies)
    overtakes: int  # per chat: a reply arriving after a reply of a later update
    order_violations: int  # the sandbox's own check (X-Botstream-Seq)
    latencies_ms: list[float]
    last_arrival_ms: float | None

    def row(self) -> dict[str, Any]:
        return {"acked": self.acked, "delivered": self.delivered, "failed_recorded": self.failed_recorded,
                "lost": len(self.lost), "duplicates": self.duplicates, "overtakes": self.overtakes,
                "order_violations": self.order_violations}


def delivered_index(deliveries: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    by_uid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in deliveries:
        for m in TEXT_RE.finditer(d.get("text") or ""):  # a coalesced message may name several
            by_uid[int(m.group(3))].append(d)
    return by_uid


def judge(updates: list[Update], deliveries: list[dict[str, Any]], stats: dict[str, Any] | None = None,
          recorded: set[int] | None = None) -> Outcome:
    """Judge `updates` (one LoadRun: per-chat sequence numbers are per run) against the deliveries that
    name them; deliveries of other runs are ignored."""
    mine = {u.uid for u in updates}
    deliveries = [d for d in deliveries if any(int(m.group(3)) in mine for m in TEXT_RE.finditer(d.get("text") or ""))]
    by_uid = delivered_index(deliveries)
    acked = [u for u in updates if u.acked]
    recorded = recorded or set()
    lost = [u.uid for u in acked if u.uid not in by_uid and u.uid not in recorded]
    delivered = sum(1 for u in acked if u.uid in by_uid)
    failed = sum(1 for u in acked if u.uid not in by_uid and u.uid in recorded)
    duplicates = sum(len(v) - 1 for v in by_uid.values() if len(v) > 1)
    # order: per chat, in arrival order, the first copy of each update's reply must have a rising seq
    overtakes = 0
    last_seq: dict[int, int] = {}
    seen: set[int] = set()
    for d in sorted(deliveries, key=lambda d: d.get("index", 0)):
        for m in TEXT_RE.finditer(d.get("text") or ""):
            chat, seq, uid = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if uid in seen or uid not in mine:
                continue
            seen.add(uid)
            if seq < last_seq.get(chat, 0):
                overtakes += 1
            last_seq[chat] = max(seq, last_seq.get(chat, 0))
    sent = {u.uid: u for u in acked}
    lat = [min(d["arrival_ms"] for d in ds) - sent[uid].sent_wall_ms for uid, ds in by_uid.items() if uid in sent]
    arrivals = [d["arrival_ms"] for d in deliveries]
    return Outcome(len(acked), delivered, failed, lost, duplicates, overtakes,
                   int((stats or {}).get("order_violations", 0)), lat, max(arrivals) if arrivals else None)
