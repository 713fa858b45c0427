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

from botstream.core.bots import BotConfig, BotRegistry, load_bots_file
from botstream.core.settings import REPO_ROOT, Settings
from botstream.ops import preflight
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
    # Refuse what would fail later before starting anything: the bots file, every handler, the ports.
    bots = load_bots_file(bots_file)
    preflight.handlers(bots)
    ports = [("ingest", settings.ingest_host, settings.ingest_port, "BOTSTREAM_INGEST_PORT"),
             ("streams web server", settings.web_host, settings.streams_web_port, "BOTSTREAM_STREAMS_WEB_PORT"),
             ("sinks web server", settings.web_host, settings.sinks_web_port, "BOTSTREAM_SINKS_WEB_PORT")]
    if needs_sandbox(bots):
        ports.append(("sandbox", "127.0.0.1", settings.sandbox_port, "BOTSTREAM_SANDBOX_PORT"))
    for what, host, number, setting in ports:
        preflight.port(host, number, what, setting)
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
        code = exc.exit_code
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
    n = settings.ingest_processes
    lines = ["", "botstream is up. Ctrl-C stops everything.", "",
             f"Webhook URLs (ingest: {n} process{'es' if n != 1 else ''}, BOTSTREAM_INGEST_WORKERS):"]
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
        platform, curl = demo
        lines += ["", f"Send a signed {platform} message (the reply shows up in the sandbox's deliveries):", curl]
    print("\n".join(lines), flush=True)


def demo_curl(bots: BotRegistry, base: str) -> tuple[str, str] | None:
    """(platform, a ready-to-paste request) for the first WhatsApp bot (signed with HMAC: the signature
    is printed, never the secret), else the first Telegram bot that talks to the local sandbox (its
    webhook secret is the header, so only a sandbox bot's demo secret is ever printed)."""
    from botstream.ingest.platforms.hub_signature import hub_signature

    bot = next((b for b in bots.values() if b.platform == "whatsapp"), None)
    if bot is None:
        telegram = next((b for b in bots.values() if b.platform == "telegram" and needs_sandbox(BotRegistry([b]))), None)
        return ("Telegram", telegram_curl(telegram, base)) if telegram is not None else None
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
    return "WhatsApp", (f"  curl -sS -X POST {base}/webhooks/whatsapp/{bot.id} \\\n"
                        f"    -H 'Content-Type: application/json' \\\n"
                        f"    -H 'X-Hub-Signature-256: {signature}' \\\n"
                        f"    -d '{body}'")


def telegram_curl(bot: BotConfig, base: str) -> str:
    now = int(time.time())
    update_id = now % 1_000_000_000
    body = json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": now, "chat": {"id": 4242, "type": "private"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Ada"}, "text": "/start"}}, separators=(",", ":"))
    return (f"  curl -sS -X POST {base}/webhooks/telegram/{bot.id} \\\n"
            f"    -H 'Content-Type: application/json' \\\n"
            f"    -H 'X-Telegram-Bot-Api-Secret-Token: {bot.secret('secret_token')}' \\\n"
            f"    -d '{body}'")
