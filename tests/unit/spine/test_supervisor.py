"""The supervisor restarts a dead child, gives up past its limit, and stops restarted children gracefully."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

from botstream.ops.supervisor import ChildSpec, Supervisor
from tests.processes import wait_until

CHILD = textwrap.dedent("""
    import pathlib, signal, sys, time
    state = pathlib.Path(sys.argv[1])
    runs = int(state.read_text()) if state.exists() else 0
    state.write_text(str(runs + 1))
    if runs == 0:
        sys.exit(3)  # the first run dies at once
    def term(*_):
        pathlib.Path(sys.argv[2]).write_text("graceful")
        sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    while True:
        time.sleep(0.1)
""")


def test_restarted_child_is_stopped_with_sigterm_not_killed(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    events: list[str] = []
    sup = Supervisor(tmp_path / "logs", {}, on_event=events.append)
    child = sup.start(ChildSpec("flaky", [str(script), str(tmp_path / "runs"), str(tmp_path / "stopped")]))
    sup.watch()
    wait_until(lambda: child.restarts == 1 and child.alive(), timeout=20, what="a restart")
    time.sleep(0.5)  # the restarted child has installed its SIGTERM handler
    sup.stop_all()
    assert (tmp_path / "stopped").read_text() == "graceful"
    assert child.proc is not None and child.proc.returncode == 0
    assert any("restarting (1/3)" in e for e in events)


def test_gives_up_after_the_restart_limit(tmp_path: Path) -> None:
    events: list[str] = []
    sup = Supervisor(tmp_path / "logs", {}, max_restarts=2, on_event=events.append)
    sup.start(ChildSpec("crasher", ["-c", "import sys; sys.exit(1)"], stop_signal=signal.SIGTERM))
    sup.watch()
    assert sup.failed.wait(20)
    sup.stop_all()
    assert any("giving up" in e for e in events)
