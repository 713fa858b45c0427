"""The real botstream topology as separate processes, for the end-to-end bench and the fault suite.

broker (embedded KRaft, 1 or 3 nodes, unless KAFKA_BOOTSTRAP_SERVERS is set) → `topics apply` →
sandbox (`botstream sandbox --no-limits`) → streams → sinks → ingest, each its own process started
with `python -m botstream ...`, logging to `<workdir>/logs/<name>-<n>.log`, tied to this process
(PR_SET_PDEATHSIG) and stopped by its own pid. A service can be killed with SIGKILL and restarted;
CPU seconds (utime+stime from /proc, every incarnation) are kept per service.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botstream.core.processes import die_with_parent, pid_alive, stop_process
from botstream.ops.embedded_kafka import EmbeddedKafka, free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
TG_SECRET = "e2e-bench-secret-token"
TG_TOKEN = "424242:e2e-bench-token"
BOT_ID = "bench"
WEBHOOK_PATH = f"/webhooks/telegram/{BOT_ID}"


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a live process and of its live descendants (uvicorn/faust helpers), in seconds."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if f[1] == str(pid):
            total += proc_cpu_seconds(int(stat.parent.name))
    return total


def http_get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read() or b"null")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except Exception:  # noqa: BLE001 - not ready yet
        return False


def http_send(url: str, method: str, body: Any = None, timeout: float = 10.0,
              headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read() or b"null")


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    incarnations: int = 0
    cpu_done: float = 0.0  # CPU of incarnations that are gone
    _last_cpu: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}-{self.incarnations}.log"

    def spawn(self) -> None:
        self.incarnations += 1
        self._last_cpu = 0.0
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, *self.argv], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                         preexec_fn=die_with_parent)

    def wait_ready(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start-up; see {self.log}:\n{tail(self.log)}")
            if self.ready_url is None or http_ok(self.ready_url):
                return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log}")

    def cpu_seconds(self) -> float:
        if self.alive() and self.pid:
            now = proc_cpu_seconds(self.pid)
            self._last_cpu = max(self._last_cpu, now)
        return self.cpu_done + self._last_cpu

    def _retire(self) -> None:
        self.cpu_done += self._last_cpu
        self._last_cpu = 0.0

    def kill9(self) -> None:
        self.cpu_seconds()
        if self.alive() and self.pid:
            os.kill(self.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(15)
        self._retire()

    def terminate(self, grace: float = 20.0) -> None:
        self.cpu_seconds()
        if self.proc is None:
            return
        stop_process(self.proc, grace)
        self._retire()


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def bots_toml(sandbox_url: str, *, coalesce: bool = False, bot_per_second: int = 1000) -> str:
    return f"""
[[bots]]
id = "{BOT_ID}"
platform = "telegram"
secret_token = "{TG_SECRET}"
token = "{TG_TOKEN}"
api_base_url = "{sandbox_url}"
handler = "botstream.streams.examples.echo"
coalesce = {str(coalesce).lower()}
[bots.limits]
global_per_second = {bot_per_second}
per_chat_per_second = 1000
per_chat_burst = 1000
"""


@dataclass
class Topology:
    workdir: Path
    partitions: int = 4
    kafka_nodes: int = 1
    kafka_heap: str = "384m"
    extra_env: dict[str, str] = field(default_factory=dict)
    # The bot's own send budget, msg/s: 1,000 is Telegram's paid broadcast; a capacity bench lifts it so
    # that the pipeline, not a configured budget, is what saturates.
    bot_per_second: int = 1000
    sandbox_limits: bool = False
    kafka: EmbeddedKafka | None = None
    bootstrap: str = ""
    services: dict[str, Service] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    @property
    def prefix(self) -> str:
        return self.env["BOTSTREAM_TOPIC_PREFIX"]

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def start(self) -> Topology:
        self.workdir.mkdir(parents=True, exist_ok=True)
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        try:
            if external:
                self.bootstrap = external
            else:
                self.kafka = EmbeddedKafka(self.workdir / "kafka", port=None, nodes=self.kafka_nodes,
                                           heap=self.kafka_heap, tie_to_parent=True)
                self.bootstrap = self.kafka.start(timeout=120)
            self.ports = {n: free_port() for n in ("ingest", "sandbox", "streams", "sinks")}
            bots = self.workdir / "bots.toml"
            bots.write_text(bots_toml(self.sandbox_url, bot_per_second=self.bot_per_second))
            rf = "3" if self.kafka_nodes >= 3 and not external else "1"
            self.sandbox_token = secrets.token_urlsafe(24)  # the sandbox's control API wants it
            self.env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                        "BOTSTREAM_SANDBOX_TOKEN": self.sandbox_token,
                        "BOTSTREAM_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
                        "BOTSTREAM_PARTITIONS": str(self.partitions), "BOTSTREAM_BOTS_FILE": str(bots),
                        "BOTSTREAM_REPLICATION_FACTOR": rf, "BOTSTREAM_MIN_INSYNC_REPLICAS": "2" if rf == "3" else "1",
                        "BOTSTREAM_INGEST_PORT": str(self.ports["ingest"]),
                        "BOTSTREAM_STREAMS_WEB_PORT": str(self.ports["streams"]),
                        "BOTSTREAM_SINKS_WEB_PORT": str(self.ports["sinks"]),
                        "BOTSTREAM_SANDBOX_PORT": str(self.ports["sandbox"]), **self.extra_env}
            self._apply_topics()
            cli = ["-m", "botstream"]
            logs = self.workdir / "logs"
            sandbox_args = ["sandbox", "--port", str(self.ports["sandbox"])]
            if not self.sandbox_limits:
                sandbox_args.append("--no-limits")
            specs = [
                ("sandbox", sandbox_args, {}, f"{self.sandbox_url}/_sandbox/healthz"),
                ("streams", ["streams"], {"BOTSTREAM_DATA_DIR": str(self.workdir / "data-streams")},
                 f"http://127.0.0.1:{self.ports['streams']}/metrics"),
                ("sinks", ["sinks"], {"BOTSTREAM_DATA_DIR": str(self.workdir / "data-sinks")},
                 f"http://127.0.0.1:{self.ports['sinks']}/metrics"),
                ("ingest", ["ingest"], {"BOTSTREAM_DATA_DIR": str(self.workdir / "data-ingest")},
                 f"{self.ingest_url}/readyz"),
            ]
            for name, args, env, ready in specs:
                svc = Service(name, [*cli, *args], {**self.env, **env}, ready, logs)
                self.services[name] = svc
                svc.spawn()
                svc.wait_ready()
            self.sandbox_config({"delivery_log_limit": 0})
        except BaseException:
            self.stop()
            raise
        return self

    def _apply_topics(self) -> None:
        from botstream.core.settings import Settings
        from botstream.ops.admin import apply_catalog

        settings = Settings.from_env(self.env)
        report = apply_catalog(settings, self.bootstrap)
        if not report.ok:
            raise RuntimeError("topics apply failed:\n" + "\n".join(report.lines()))

    # -- control -----------------------------------------------------------------------------------
    def kill9(self, name: str) -> None:
        self.services[name].kill9()

    def restart(self, name: str, timeout: float = 120.0) -> float:
        svc = self.services[name]
        if svc.alive():
            svc.kill9()
        svc.spawn()
        return svc.wait_ready(timeout)

    def cpu(self) -> dict[str, float]:
        out = {name: svc.cpu_seconds() for name, svc in self.services.items()}
        if self.kafka is not None:
            out["kafka"] = sum(proc_cpu_seconds(p) for n in self.kafka.nodes if (p := n.pid()) and pid_alive(p))
        return out

    def sandbox_config(self, patch: dict[str, Any]) -> Any:
        return http_send(f"{self.sandbox_url}/_sandbox/config", "PUT", patch, headers=self._control())

    def sandbox_stats(self) -> Any:
        return http_get(f"{self.sandbox_url}/_sandbox/stats")

    def sandbox_deliveries(self, since_ms: int | None = None) -> list[dict[str, Any]]:
        query = f"?since_ms={since_ms}" if since_ms is not None else ""
        data = http_get(f"{self.sandbox_url}/_sandbox/deliveries{query}", timeout=60)
        return list(data.get("deliveries", [])) if isinstance(data, dict) else list(data)

    def sandbox_reset(self) -> None:
        http_send(f"{self.sandbox_url}/_sandbox/reset", "POST", {}, headers=self._control())

    def _control(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sandbox_token}"}

    def log_files(self) -> list[Path]:
        files = sorted((self.workdir / "logs").glob("*.log"))
        if self.kafka is not None:
            files += [p for n in self.kafka.nodes for p in (n.log_file, n.stdout_file) if p.exists()]
        return files

    def stop(self) -> None:
        order = [["ingest"], ["streams", "sinks"], ["sandbox"]]
        for group in order:
            for name in group:
                svc = self.services.get(name)
                if svc is not None:
                    try:
                        svc.terminate(grace=20)
                    except Exception:  # noqa: BLE001 - keep stopping the others
                        pass
        if self.kafka is not None:
            self.kafka.stop(grace=15)

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
