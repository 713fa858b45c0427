"""Stopping a child process: SIGTERM first, SIGKILL when it does not go."""

from __future__ import annotations

import signal
import subprocess
import sys

from botstream.core.processes import pid_alive, stop_process

IGNORES_SIGTERM = ("import signal, sys, time\n"
                   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "print('ready', flush=True)\n"
                   "time.sleep(60)\n")


def test_a_child_that_exits_on_sigterm_is_stopped_and_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop_process(proc, grace=10) == -signal.SIGTERM
    assert not pid_alive(proc.pid)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    proc = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert stop_process(proc, grace=0.5) == -signal.SIGKILL
    assert not pid_alive(proc.pid)


def test_a_child_that_already_exited_keeps_its_code() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(10)
    assert stop_process(proc) == 3
