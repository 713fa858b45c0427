"""How fast is the sandbox, next to the fastest thing the same server stack can do?

Two servers run in subprocesses — the sandbox (limits off) and a bare ASGI app answering 200 with
no work — both on uvicorn + httptools + uvloop, one worker, pinned to CPU 0. The load comes from
CPU 1 over many keep-alive connections: `wrk` when installed (it spends far less CPU per request
than a Python client, so it measures the server), else an asyncio HTTP/1.1 client in this process.

Two figures per target:
- wall req/s: what the client saw. On a shared machine this swings with whatever else runs.
- req per server CPU-second: requests served divided by the user+sys time the server process
  consumed meanwhile (/proc). That is the single-core ceiling, and it holds steady under
  background load, so the ratio sandbox/bare is computed from it.
Targets are measured in interleaved rounds and the median kept.

    python -m bench.sandbox.bench_sandbox [--rounds 3] [--duration 1] [--connections 64]
                                          [--loader auto|wrk|python] [--only NAME] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botstream.core.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
SERVER_CPU, LOADER_CPU = 0, 1
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Target:
    """One request shape; `%d` in `path`/`body` becomes a chat number cycling over `chats`."""

    name: str
    server: str  # "sandbox" or "bare"
    path: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()
    chats: int = 1000


@dataclass(frozen=True)
class Sample:
    requests: int
    seconds: float
    non_2xx: int
    cpu_seconds: float

    @property
    def wall_rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")


TEXT = "hello from the bench, a reply of ordinary length"
TG = "/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"
TG_BODY = '{"chat_id":%d,"text":"' + TEXT + '"}'
TARGETS = (
    Target("bare ASGI (baseline)", "bare", TG, TG_BODY),
    Target("telegram sendMessage", "sandbox", TG, TG_BODY),
    Target(
        "slack chat.postMessage",
        "sandbox",
        "/api/chat.postMessage",
        '{"channel":"C%d","text":"' + TEXT + '"}',
        (("Authorization", "Bearer xoxb-1111-2222-benchbench"),),
    ),
    Target(
        "discord create message",
        "sandbox",
        "/api/v10/channels/%d/messages",
        '{"content":"' + TEXT + '"}',
        (("Authorization", "Bot MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.benchsecret"),),
    ),
    Target(
        "whatsapp messages",
        "sandbox",
        "/v21.0/1065403/messages",
        '{"messaging_product":"whatsapp","to":"%d","type":"text","text":{"body":"' + TEXT + '"}}',
        (("Authorization", "Bearer EAAG-bench"),),
    ),
)


# -- server side (runs in the subprocess) -------------------------------------------------------


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: read the request, answer a constant 200."""
    if scope["type"] != "http":
        return
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


def serve(kind: str, port: int) -> None:
    import uvicorn

    from botstream.sandbox import SandboxConfig, build_app
    from botstream.sandbox.server import uvicorn_config

    _pin(SERVER_CPU)
    app: Any = bare_app if kind == "bare" else build_app(SandboxConfig().with_limits_disabled())
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_level="error")).run()


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


# -- driver side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server_process(kind: str) -> Iterator[Server]:
    port = _free_port()
    cmd = [sys.executable, "-m", "bench.sandbox.bench_sandbox", "--serve", kind, "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        yield Server(port, proc.pid)
    finally:
        stop_process(proc)


def _lua(target: Target) -> str:
    headers = dict((("Content-Type", "application/json"), *target.headers))
    header_lines = "\n".join(f'  h["{k}"] = "{v}"' for k, v in headers.items())
    return f"""
local counter = 0
request = function()
  counter = counter + 1
  local chat = counter % {target.chats} + 1
  local h = {{}}
{header_lines}
  h["X-Botstream-Seq"] = tostring(math.floor(counter / {target.chats}))
  local path = string.format("{target.path}", chat)
  local body = string.format('{target.body}', chat)
  return wrk.format("POST", path, h, body)
end
"""


def run_wrk(port: int, target: Target, duration: float, connections: int) -> tuple[int, float, int]:
    """(requests, seconds, non-2xx) from wrk's own report."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(target))
    try:
        cmd = [
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", script.name,
            f"http://127.0.0.1:{port}",
        ]  # fmt: skip
        pin = lambda: _pin(LOADER_CPU)  # noqa: E731
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, preexec_fn=pin).stdout
    finally:
        os.unlink(script.name)
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    if errors:
        print(f"    wrk socket errors: {errors.group(1)}", file=sys.stderr)
    seconds = float(total.group(2)) / (1000.0 if total.group(3) == "ms" else 1.0)
    return int(total.group(1)), seconds, int(bad.group(1)) if bad else 0


async def _python_load(
    port: int, target: Target, duration: float, connections: int
) -> tuple[int, float, int]:
    headers = "".join(f"{k}: {v}\r\n" for k, v in target.headers)
    done, bad = 0, 0
    stop_at = time.monotonic() + duration

    async def connection(offset: int) -> None:
        nonlocal done, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = offset
        while time.monotonic() < stop_at:
            n += connections
            chat = n % target.chats + 1
            body = (target.body % chat if "%d" in target.body else target.body).encode()
            path = target.path % chat if "%d" in target.path else target.path
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}"
                f"X-Botstream-Seq: {n // target.chats}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done += 1
            bad += not status_line.startswith(b"HTTP/1.1 2")
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection(i) for i in range(connections)))
    return done, time.monotonic() - started, bad


def run_python(port: int, target: Target, duration: float, connections: int) -> tuple[int, float, int]:
    try:
        import uvloop

        return uvloop.run(_python_load(port, target, duration, connections))
    except ImportError:  # pragma: no cover
        return asyncio.run(_python_load(port, target, duration, connections))


Loader = Callable[[int, Target, float, int], tuple[int, float, int]]


def measure(run: Loader, server: Server, target: Target, duration: float, connections: int) -> Sample:
    before = server.cpu_seconds()
    requests, seconds, bad = run(server.port, target, duration, connections)
    return Sample(requests, seconds, bad, server.cpu_seconds() - before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--only", help="substring of target names to run (the baseline always runs)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--serve", choices=["sandbox", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk") is not None)
    run: Loader = run_wrk if use_wrk else run_python
    if not use_wrk:
        _pin(LOADER_CPU)
    targets = [t for t in TARGETS if t.server == "bare" or not args.only or args.only in t.name]
    print(
        f"sandbox ceiling: {'wrk' if use_wrk else 'python'} loader, {args.connections} connections, limits off; "
        f"{args.rounds} interleaved rounds x {args.duration:g}s, medians"
    )
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    with server_process("bare") as bare, server_process("sandbox") as sandbox:
        servers = {"bare": bare, "sandbox": sandbox}
        for kind in {t.server for t in targets}:  # warm-up: imports, caches, first connections
            run(servers[kind].port, next(t for t in targets if t.server == kind), 1.0, args.connections)
        for _ in range(args.rounds):  # interleaved, so background noise spreads over every target
            for target in targets:
                samples[target.name].append(
                    measure(run, servers[target.server], target, args.duration, args.connections)
                )
    base_cpu = statistics.median(s.cpu_rate for s in samples[targets[0].name])
    base_wall = statistics.median(s.wall_rate for s in samples[targets[0].name])
    print(
        f"  {'target':<24} {'wall req/s':>11} {'req/CPU-s':>11} {'vs bare (CPU)':>14} {'vs bare (wall)':>15}  non-2xx"
    )
    results: list[dict[str, Any]] = []
    for target in targets:
        group = samples[target.name]
        wall = statistics.median(s.wall_rate for s in group)
        cpu = statistics.median(s.cpu_rate for s in group)
        bad = sum(s.non_2xx for s in group)
        results.append(
            {"target": target.name, "wall_req_per_s": round(wall), "req_per_cpu_s": round(cpu),
             "ratio_cpu": round(cpu / base_cpu, 3), "ratio_wall": round(wall / base_wall, 3), "non_2xx": bad,
             "samples": [{"requests": s.requests, "seconds": s.seconds, "cpu_seconds": s.cpu_seconds} for s in group]}
        )  # fmt: skip
        print(
            f"  {target.name:<24} {wall:>11,.0f} {cpu:>11,.0f} {cpu / base_cpu:>14.2f} {wall / base_wall:>15.2f}  {bad}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"connections": args.connections, "results": results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
