"""Memory and CPU of a child process, sampled from /proc on a background thread.

CPU seconds (user + system, all threads) make a figure that holds up on a shared machine: wall-clock
rates swing with whatever else runs, records per CPU-second much less.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class ProcessSampler:
    """Samples (wall time, CPU seconds, RSS) of `pid` every `interval` s until `stop()`."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.peak_rss_kib = 0
        self.hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        try:
            cpu = cpu_seconds(self.pid)
            rss = status_kib(self.pid, "VmRSS")
            self.hwm_kib = max(self.hwm_kib, status_kib(self.pid, "VmHWM"))
        except (OSError, IndexError, ValueError):  # the process is gone
            return
        self.times.append(time.time())
        self.cpu.append(cpu)
        self.peak_rss_kib = max(self.peak_rss_kib, rss)

    def cpu_at(self, wall: float) -> float:
        """CPU seconds used by `wall` (unix time), interpolated between samples."""
        if not self.times:
            return 0.0
        i = bisect.bisect_left(self.times, wall)
        if i <= 0:
            return self.cpu[0]
        if i >= len(self.times):
            return self.cpu[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        c0, c1 = self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (wall - t0) / (t1 - t0) if t1 > t0 else c1

    def cpu_between(self, start: float, end: float) -> float:
        return self.cpu_at(end) - self.cpu_at(start)

    @property
    def peak_mib(self) -> float:
        return max(self.peak_rss_kib, self.hwm_kib) / 1024

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(2)
