"""Processes botstream starts and watches: tie a child's life to its parent, ask whether a pid lives.

Used by the embedded Kafka launcher and the `botstream up` supervisor, by the tests and the benches
(their child processes), and by anything that checks a pid recorded in a state file.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess

__all__ = ["die_with_parent", "pid_alive", "stop_process"]

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """`preexec_fn` of a child that must not outlive the process that started it: the kernel sends
    it SIGKILL when its parent thread dies (Linux's PR_SET_PDEATHSIG), so a killed test run,
    supervisor or bench leaves no broker or worker behind."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Is `pid` a running process? A zombie (exited, not yet reaped) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0); read its state
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> int:
    """Stop a child this process started: SIGTERM, then SIGKILL if it has not exited within `grace`
    seconds; returns its exit code (the child is reaped either way)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode
