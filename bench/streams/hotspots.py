"""Where a worker spends its time: py-spy attached to the running process, folded stacks summarised.

py-spy (`pip install py-spy` into the venv; not a project dependency) samples from outside, so the
worker runs its own code unchanged. Summaries: functions by self time (leaf frames), by inclusive
time (anywhere on the stack), and leaf time by package (faust, aiokafka, asyncio, the project, ...).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TRUNK = 0.6  # frames on more of the stacks than this are the event loop and start-up: not interesting
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
ROOT = str(Path(__file__).resolve().parents[2]) + "/"
PROJECT = {"botstream", "streams", "schemas", "sinks", "ingest", "bench", "<avro-compiled>"}


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class Recorder:
    """`py-spy record --gil` on `pid` until `stop()` (SIGINT makes py-spy write its file).

    Only samples whose thread holds the GIL count: on a busy shared machine a process is often
    descheduled on its way back from a system call, and plain wall-clock samples then pile up on
    whatever made the call (socket writes), which says more about the neighbours than the code.
    """

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy not found (pip install py-spy into the venv)")
        self.out = out
        self.log = out.with_suffix(".log")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                                          "--gil", "--nonblocking", "--output", str(out)], stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> Path | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.out if self.out.exists() else None


@dataclass
class Summary:
    samples: int
    self_time: list[tuple[str, float]]       # (function, share of samples)
    inclusive: list[tuple[str, float]]
    by_package: list[tuple[str, float]]

    def lines(self, top: int = 15) -> list[str]:
        out = [f"  {self.samples} samples"]
        out.append("  self time (leaf frames):")
        out += [f"    {share:6.1%}  {name}" for name, share in self.self_time[:top]]
        out.append("  inclusive time (below the event loop's trunk):")
        out += [f"    {share:6.1%}  {name}" for name, share in self.inclusive if share < TRUNK][:top]
        out.append("  self time by package:")
        out += [f"    {share:6.1%}  {name}" for name, share in self.by_package[:12]]
        return out


def summarise(folded: Path) -> Summary:
    leaf: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    pkgs: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        leaf[frames[-1][0]] += count
        pkgs[frames[-1][1]] += count
        for name in {f[0] for f in frames}:
            incl[name] += count

    def shares(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in c.most_common()] if total else []

    return Summary(total, shares(leaf), shares(incl), shares(pkgs))


def _name(frame: str) -> tuple[str, str]:
    """("func (short/path.py)", package) of a py-spy frame `func (path:line)`."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "?"
    path = m.group("file")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(ROOT):
        path = path[len(ROOT):]
    elif "/lib/python3" in path:
        path = path.split("/lib/", 1)[1].split("/", 1)[1]
    top = path.split("/", 1)[0].removesuffix(".py")
    package = f"project:{top}" if top in PROJECT else top
    return f"{m.group('func')} ({path})", package
