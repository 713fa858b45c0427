"""Supervised child processes for `botstream up`: start in order, restart on death, stop in order.

Each child runs in its own session (so a terminal's Ctrl-C reaches only the supervisor, which then
stops children in the right order) and is also tied to the supervisor with PR_SET_PDEATHSIG (so a
killed supervisor leaves nothing behind). Output goes to one log file per child.

When a child exits, the supervisor says why on the console in one line: `last_error` reads what the
child wrote since it was (re)started and picks the cause — the CLI's `botstream: error: ...` line, else
the last error-level JSON log line (message and exception), else a traceback's final line — never the
traceback itself. Exit codes are named (`botstream.core.exitcodes`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botstream.core.exitcodes import ExitCode
from botstream.core.processes import die_with_parent

log = logging.getLogger(__name__)


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    ready: Callable[[], bool] | None = None  # polled after start until true (or the timeout)
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 30.0
    ready_timeout: float = 120.0


@dataclass
class Child:
    spec: ChildSpec
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    stopping: bool = False
    log_offset: int = 0  # where the current run's output starts in log_file

    def exit_summary(self) -> str:
        """"exit code 6 (bad handler): <the cause>" for a child that has exited."""
        code = self.proc.returncode if self.proc else None
        cause = last_error(self.log_file, self.log_offset)
        return f"{describe_exit(code)}{': ' + cause if cause else ''}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class SupervisorError(RuntimeError):
    def __init__(self, message: str, exit_code: int = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str]
    max_restarts: int = 3
    restart_window_s: float = 300.0
    on_event: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)
    failed: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _monitor: threading.Thread | None = None
    _closing: bool = False
    # PR_SET_PDEATHSIG fires when the *thread* that spawned a child exits: the watch thread, which spawns
    # restarts, must outlive every child it started, so it runs until stop_all has finished.
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self, spec: ChildSpec) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(spec, self.log_dir / f"{spec.name}.log")
        self.children.append(child)
        self._spawn(child)
        self._wait_ready(child)
        return child

    def _spawn(self, child: Child) -> None:
        with child.log_file.open("ab") as out:
            child.log_offset = out.tell()
            child.proc = subprocess.Popen(
                [sys.executable, *child.spec.argv], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, start_new_session=True, preexec_fn=die_with_parent)
        child.started_at = time.monotonic()

    def _wait_ready(self, child: Child) -> None:
        if child.spec.ready is None:
            return
        deadline = time.monotonic() + child.spec.ready_timeout
        while time.monotonic() < deadline:
            if not child.alive():
                code = child.proc.returncode if child.proc else None
                raise SupervisorError(f"{child.spec.name} failed to start, {child.exit_summary()} (log: {child.log_file})",
                                      code if code in set(ExitCode) - {ExitCode.OK} else ExitCode.FAILED)
            try:
                if child.spec.ready():
                    return
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            time.sleep(0.2)
        raise SupervisorError(f"{child.spec.name} not ready after {child.spec.ready_timeout:.0f}s; see {child.log_file}")

    def watch(self) -> None:
        """Restart children that die, in a background thread, until `stop_all`."""
        self._monitor = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        history: dict[str, list[float]] = {}
        while not self._stopped.wait(0.5):
            for child in list(self.children):
                with self._lock:
                    if self._closing or self.failed.is_set() or child.stopping or child.alive():
                        continue
                    summary = child.exit_summary()
                    now = time.monotonic()
                    recent = [t for t in history.get(child.spec.name, []) if now - t < self.restart_window_s]
                    if len(recent) >= self.max_restarts:
                        self.on_event(f"{child.spec.name} died {len(recent) + 1} times within "
                                      f"{self.restart_window_s:.0f}s, last {summary}; giving up (log: {child.log_file})")
                        self.failed.set()  # keep this thread alive: it is the parent of what it restarted
                        continue
                    recent.append(now)
                    history[child.spec.name] = recent
                    child.restarts += 1
                    self.on_event(f"{child.spec.name} exited, {summary}; restarting "
                                  f"({len(recent)}/{self.max_restarts}), log: {child.log_file}")
                    self._spawn(child)

    def stop(self, child: Child) -> int | None:
        child.stopping = True
        proc = child.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        os.kill(proc.pid, child.spec.stop_signal)
        try:
            return proc.wait(child.spec.stop_grace)
        except subprocess.TimeoutExpired:
            self.on_event(f"{child.spec.name} did not stop within {child.spec.stop_grace:.0f}s; killing it")
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(10)

    def stop_all(self, order: list[list[str]] | None = None) -> None:
        """Stop children in groups (each group in parallel), e.g. [["ingest"], ["streams", "sinks"], ["sandbox"]]."""
        with self._lock:
            self._closing = True
        names = [c.spec.name for c in self.children]
        groups = order or [[n] for n in reversed(names)]
        listed = {n for g in groups for n in g}
        groups = groups + [[n for n in reversed(names) if n not in listed]]
        for group in groups:
            members = [c for c in self.children if c.spec.name in group]
            threads = [threading.Thread(target=self.stop, args=(c,)) for c in members]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self._stopped.set()


CLI_ERROR = "botstream: error: "
# the last line of a Python traceback: "pkg.mod.SomeError: message" (or a bare "SomeError")
_TRACEBACK_END = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure)\b(?::.*)?$")
_TAIL_BYTES = 256 * 1024


def describe_exit(code: int | None) -> str:
    """"exit code 6 (bad handler)" / "killed by SIGKILL"."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    try:
        name = ExitCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"exit code {code}"
    return f"exit code {code} ({name})"


def last_error(log_file: Path, offset: int = 0) -> str | None:
    """The cause of a child's exit, in one line, from what it wrote to `log_file` after `offset`."""
    try:
        with log_file.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - _TAIL_BYTES))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(CLI_ERROR):
            return line[len(CLI_ERROR):]
    for line in reversed(lines):
        if line.startswith("{"):
            cause = _json_error(line)
            if cause:
                return cause
        elif _TRACEBACK_END.match(line):
            return line
    return None


def _json_error(line: str) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("level") not in ("error", "critical"):
        return None
    msg = str(event.get("msg", "")).strip()
    exc = f"{event['exc_type']}: {event.get('exc_message', '')}" if event.get("exc_type") else ""
    if exc and exc not in msg:
        msg = f"{msg} ({exc})" if msg else exc
    return " ".join(msg.split()) or None
