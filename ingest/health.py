"""Is the producer able to make records durable right now? A pure state machine fed with events.

The Kafka sink reports what it observes — acknowledged deliveries, failed deliveries, the periodic
metadata probe, librdkafka's "all brokers down" and fatal errors — with the time they happened; this
object turns them into the answers of /healthz and /readyz. Keeping it free of threads and clocks
lets the rules be tested directly:

- alive unless librdkafka reported a fatal error (the idempotent producer is then unusable and only
  a restart helps; the liveness probe failing is what triggers it);
- ready when alive, the latest broker evidence is a success, and that success is recent (so a
  process whose probe thread stalled does not stay ready forever).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from botstream.ingest.sink import SinkStatus


@dataclass
class Transition:
    """Returned when readiness flips, so the caller can log the change once (not every event)."""

    ready: bool
    reason: str


class ProducerHealth:
    def __init__(self, stale_after_s: float = 10.0) -> None:
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()  # fed from the poll and probe threads, read from the loop
        self._last_ok: float | None = None
        self._last_failure: float | None = None
        self._failure_reason = "no broker contact yet"
        self._fatal: str | None = None
        self._was_ready = False

    def succeeded(self, now: float) -> Transition | None:
        """A delivery was acknowledged or the metadata probe found the topic healthy."""
        with self._lock:
            if self._last_ok is None or now > self._last_ok:
                self._last_ok = now
            return self._transition(now)

    def failed(self, now: float, reason: str) -> Transition | None:
        """A delivery failed, the probe failed, or librdkafka reported all brokers down."""
        with self._lock:
            if self._last_failure is None or now >= self._last_failure:
                self._last_failure = now
                self._failure_reason = reason
            return self._transition(now)

    def fatal(self, reason: str) -> None:
        with self._lock:
            self._fatal = reason
            self._was_ready = False

    @property
    def alive(self) -> bool:
        """Lock-free (one attribute read), for the per-request check."""
        return self._fatal is None

    def status(self, now: float) -> SinkStatus:
        with self._lock:
            return self._status(now)

    def _status(self, now: float) -> SinkStatus:
        if self._fatal is not None:
            return SinkStatus(alive=False, ready=False, reason=f"fatal producer error: {self._fatal}")
        if self._last_ok is None:
            return SinkStatus(alive=True, ready=False, reason=self._failure_reason)
        if self._last_failure is not None and self._last_failure > self._last_ok:
            return SinkStatus(alive=True, ready=False, reason=self._failure_reason)
        if now - self._last_ok > self.stale_after_s:
            return SinkStatus(alive=True, ready=False, reason=f"no broker contact for {now - self._last_ok:.0f} s")
        return SinkStatus(alive=True, ready=True)

    def _transition(self, now: float) -> Transition | None:
        status = self._status(now)
        if status.ready == self._was_ready:
            return None
        self._was_ready = status.ready
        return Transition(status.ready, status.reason)
