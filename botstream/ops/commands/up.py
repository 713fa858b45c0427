"""`botstream up` (what `make run` starts): the whole pipeline on one machine, in the foreground.

Embedded Kafka (or `KAFKA_BOOTSTRAP_SERVERS`) → `topics apply` → the platform sandbox (when a bot
points at a local API) → ingest → a streams worker and a sinks worker, each a supervised child process
(restarted when it dies, within a limit). Ctrl-C stops them in order: ingest stops accepting, the
workers finish and commit, the sandbox goes, the broker last.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

from botstream.core.bots import BotRegistry, load_bots_file
from botstream.core.settings import REPO_ROOT, Settings
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import kafka_for
from botstream.ops.supervisor import ChildSpec, Supervisor, SupervisorError

EXAMPLE_BOTS = REPO_ROOT / "deploy" / "bots.example.toml"
STOP_ORDER = [["ingest"], ["streams", "sinks"], ["sandbox"]]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole pipeline locally in the foreground (Ctrl-C stops it)")
    p.add_argument("--free-port", action="store_true", help="run the embedded broker on a free port")
    p.add_argument("--bots", type=Path, help="bots file (default BOTSTREAM_BOTS_FILE or deploy/bots.example.toml)")
    p.set_defaults(func=cmd_up)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URLs we built
        return bool(resp.status == 200)


def needs_sandbox(bots: BotRegistry) -> bool:
    return any(urlparse(b.api_base_url).hostname in ("127.0.0.1", "localhost") for b in bots.values())


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    bots_file = args.bots or settings.bots_file or EXAMPLE_BOTS
    bots = load_bots_file(bots_file)  # refuse a bad file before starting anything
    kafka = kafka_for(settings, pick_free_port=args.free_port, tie_to_parent=True)
    bootstrap = kafka.start()
    print(f"Kafka ready at {bootstrap}", flush=True)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "BOTSTREAM_BOTS_FILE": str(Path(bots_file).resolve())}
    sup = Supervisor(settings.data_dir / "logs", env)
    code = 0
    try:
        report = apply_catalog(settings, bootstrap)
        for line in report.lines():
            if not line.startswith("ok "):
                print(f"  topics: {line}")
        if not report.ok:
            return 1
        cli = ["-m", "botstream"]
        if needs_sandbox(bots):
            sup.start(ChildSpec("sandbox", [*cli, "sandbox", "--port", str(settings.sandbox_port)],
                                ready=lambda: http_ok(f"http://127.0.0.1:{settings.sandbox_port}/_sandbox/healthz")))
        sup.start(ChildSpec("streams", [*cli, "streams"],
                            ready=lambda: http_ok(f"http://127.0.0.1:{settings.streams_web_port}/metrics")))
        sup.start(ChildSpec("sinks", [*cli, "sinks"],
                            ready=lambda: http_ok(f"http://127.0.0.1:{settings.sinks_web_port}/metrics")))
        sup.start(ChildSpec("ingest", [*cli, "ingest"], stop_grace=15,
                            ready=lambda: http_ok(f"http://127.0.0.1:{settings.ingest_port}/readyz")))
        sup.watch()
        print_banner(settings, bots, sup)
        code = 0 if wait_for_stop_or(sup) else 1
    except SupervisorError as exc:
        print(f"botstream up: {exc}", flush=True)
        code = 1
    finally:
        print("stopping: ingest, then workers, then sandbox, then Kafka ...", flush=True)
        sup.stop_all(STOP_ORDER)
        kafka.stop()
        print("stopped", flush=True)
    return code


def wait_for_stop_or(sup: Supervisor) -> bool:
    """Block until Ctrl-C/SIGTERM (True) or until a child gave up (False)."""
    import signal
    import threading

    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set() and not sup.failed.is_set():
            stop.wait(0.5)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return stop.is_set()


def print_banner(settings: Settings, bots: BotRegistry, sup: Supervisor) -> None:
    base = f"http://127.0.0.1:{settings.ingest_port}"
    lines = ["", "botstream is up. Ctrl-C stops everything.", "", "Webhook URLs:"]
    for bot in bots.values():
        lines.append(f"  {bot.platform:9} {bot.id:14} POST {base}/webhooks/{bot.platform}/{bot.id}")
    lines += ["", "Metrics:",
              f"  ingest   {base}/metrics",
              f"  streams  http://127.0.0.1:{settings.streams_web_port}/metrics",
              f"  sinks    http://127.0.0.1:{settings.sinks_web_port}/metrics"]
    if any(c.spec.name == "sandbox" for c in sup.children):
        sandbox = f"http://127.0.0.1:{settings.sandbox_port}"
        lines += [f"  sandbox  {sandbox}/_sandbox/stats", "", f"Deliveries (what the bots sent): {sandbox}/_sandbox/deliveries"]
    lines += ["", f"Logs: {sup.log_dir}/<service>.log"]
    demo = demo_curl(bots, base)
    if demo:
        lines += ["", "Send a signed WhatsApp message (the reply shows up in the sandbox's deliveries):", demo]
    print("\n".join(lines), flush=True)


def demo_curl(bots: BotRegistry, base: str) -> str | None:
    """A ready-to-paste request signed with HMAC: the signature is printed, never the secret."""
    from botstream.ingest.platforms.hub_signature import hub_signature

    bot = next((b for b in bots.values() if b.platform == "whatsapp"), None)
    if bot is None:
        return None
    phone = bot.secret("phone_number_id")
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "demo", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone},
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": "4915112345678"}],
            "messages": [{"from": "4915112345678", "id": f"wamid.demo-{uuid.uuid4().hex[:12]}",
                          "timestamp": str(int(time.time())), "type": "text", "text": {"body": "hello botstream"}}],
        }}]}]}, separators=(",", ":"))
    signature = hub_signature(bot.secret("app_secret"), body.encode())
    return (f"  curl -sS -X POST {base}/webhooks/whatsapp/{bot.id} \\\n"
            f"    -H 'Content-Type: application/json' \\\n"
            f"    -H 'X-Hub-Signature-256: {signature}' \\\n"
            f"    -d '{body}'")

