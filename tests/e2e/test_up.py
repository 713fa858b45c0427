"""`botstream up` as a user runs it: one command, every platform answered, clean JSON logs, Ctrl-C
clean; and a broken bot refused in one line before anything starts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from botstream.core.processes import pid_alive
from botstream.ops.embedded_kafka import free_port
from tests.integration.ingest.support import (
    DISCORD_KEY,
    SLACK_SECRET,
    TG_SECRET,
    WA_SECRET,
    WA_VERIFY,
    discord,
    hub,
    slack,
    telegram,
)
from tests.processes import wait_until

pytestmark = pytest.mark.kafka

TOKENS = {"telegram": "424242:e2e-telegram-token", "slack": "xoxb-e2e-slack-token",
          "discord": "e2e-discord-bot-token", "whatsapp": "e2e-whatsapp-access-token"}


def bots_file(path: Path, sandbox: str) -> Path:
    path.write_text(f"""
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "{TG_SECRET}"
token = "{TOKENS['telegram']}"
api_base_url = "{sandbox}"
handler = "botstream.streams.examples.echo"

[[bots]]
id = "faq"
platform = "slack"
signing_secret = "{SLACK_SECRET}"
bot_token = "{TOKENS['slack']}"
api_base_url = "{sandbox}"
handler = "botstream.streams.examples.faq"

[[bots]]
id = "faq-dc"
platform = "discord"
public_key = "{DISCORD_KEY.public_key().public_bytes_raw().hex()}"
application_id = "555000555"
bot_token = "{TOKENS['discord']}"
api_base_url = "{sandbox}"
handler = "botstream.streams.examples.faq"

[[bots]]
id = "echo-wa"
platform = "whatsapp"
app_secret = "{WA_SECRET}"
verify_token = "{WA_VERIFY}"
access_token = "{TOKENS['whatsapp']}"
phone_number_id = "7007"
api_base_url = "{sandbox}"
handler = "botstream.streams.examples.echo"
""")
    return path


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            out |= {child} | descendants(child)
    return out


def test_botstream_up_end_to_end(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ingest", "sandbox", "streams", "sinks", "kafka")}
    sandbox = f"http://127.0.0.1:{ports['sandbox']}"
    env = {**os.environ, "BOTSTREAM_DATA_DIR": str(tmp_path / "data"), "BOTSTREAM_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:6]}",
           "BOTSTREAM_INGEST_PORT": str(ports["ingest"]), "BOTSTREAM_SANDBOX_PORT": str(ports["sandbox"]),
           "BOTSTREAM_STREAMS_WEB_PORT": str(ports["streams"]), "BOTSTREAM_SINKS_WEB_PORT": str(ports["sinks"]),
           "BOTSTREAM_KAFKA_PORT": str(ports["kafka"]), "BOTSTREAM_KAFKA_HEAP": "384m", "BOTSTREAM_PARTITIONS": "2",
           "BOTSTREAM_BOTS_FILE": str(bots_file(tmp_path / "bots.toml", sandbox))}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # `up` runs its own embedded broker, as on a newcomer's machine
    out_file = tmp_path / "up.out"
    with out_file.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "botstream", "up"], stdout=out, stderr=subprocess.STDOUT,
                              env=env, start_new_session=True)
    try:
        wait_until(lambda: "botstream is up" in out_file.read_text() or up.poll() is not None, timeout=240,
                   what="botstream up")
        banner = out_file.read_text()
        assert up.poll() is None, banner
        assert "/webhooks/telegram/echo" in banner and "X-Hub-Signature-256" in banner  # the signed demo curl
        ingest = f"http://127.0.0.1:{ports['ingest']}"
        correlation = f"e2e-{uuid.uuid4().hex[:12]}"
        sends = [
            ("/webhooks/telegram/echo", *telegram(901, 31337, "hello e2e")),
            ("/webhooks/slack/faq", *slack({"type": "event_callback", "team_id": "T1", "event_id": "Ev1",
                                            "event": {"type": "message", "channel": "C1", "user": "U1",
                                                      "text": "what's the price?", "ts": "1700000000.1"}})),
            ("/webhooks/discord/faq-dc", *discord({"type": 2, "id": "777", "application_id": "555000555",
                                                   "token": "itoken-e2e", "channel_id": "8080",
                                                   "user": {"id": "42"}, "data": {"name": "help"}})),
            ("/webhooks/whatsapp/echo-wa", *hub({"object": "whatsapp_business_account", "entry": [{"id": "b", "changes": [
                {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "7007"},
                                                "messages": [{"from": "4915100", "id": "wamid.e2e1", "timestamp": "1",
                                                              "type": "text", "text": {"body": "hola"}}]}}]}]}, WA_SECRET)),
        ]
        for path, body, headers in sends:
            r = httpx.post(ingest + path, content=body, headers={**headers, "x-request-id": correlation}, timeout=10)
            assert r.status_code == 200, (path, r.status_code, r.text)
            assert r.headers["x-request-id"] == correlation
        expected = {"telegram": "echo: hello e2e", "slack": "botstream is free and open source.",
                    "whatsapp": "echo: hola"}

        def delivered() -> dict[str, list[str]]:
            entries = httpx.get(sandbox + "/_sandbox/deliveries", timeout=5).json()
            entries = entries.get("deliveries", entries) if isinstance(entries, dict) else entries
            got: dict[str, list[str]] = {}
            for e in entries:
                got.setdefault(e["platform"], []).append(e["text"])
            return got

        got = wait_until(lambda: (d := delivered()) and all(t in d.get(p, []) for p, t in expected.items())
                         and d.get("discord") and d, timeout=90, what="a reply on every platform")
        assert any(t.startswith("Ask me about price") for t in got["discord"]), got
        # (ingest's and the workers' per-request/per-update lines are DEBUG: the correlation id travels in
        # the records and the X-Request-Id header, checked above, not in INFO logs)
        logs = {name: (tmp_path / "data" / "logs" / f"{name}.log").read_text() for name in ("ingest", "streams", "sinks")}
        pending = log_problems(logs)
        console = out_file.read_text()
        assert not RAW_LIBRDKAFKA.search(console), "librdkafka wrote to up's console"
        every_log = "\n".join([*logs.values(), banner, out_file.read_text(),
                               *(p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*.log"))])
        secrets = [TG_SECRET, SLACK_SECRET, WA_SECRET, WA_VERIFY, *TOKENS.values()]
        leaked = [s for s in secrets if s in every_log]
        assert leaked == [], f"secrets in logs: {leaked}"
        demo = subprocess.run([sys.executable, "-m", "botstream", "demo", "--rate", "20", "--chats", "5",
                               "--duration", "3"], env=env, capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stderr[-3000:]
        table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
                 for line in demo.stdout.splitlines() if line.startswith("| ") and "platform" not in line}
        assert set(table) == {"telegram", "slack", "whatsapp"}, demo.stdout  # discord: only the demo key signs
        for platform, (sent, _redelivered, acked, errors, delivered, _p50, _p99) in table.items():
            assert int(acked) == int(sent) and int(errors) == 0, (platform, demo.stdout)
            assert int(delivered) > 0, (platform, demo.stdout)
        assert table["telegram"][6].endswith("ms"), demo.stdout  # echo replies carry the marker: latency known
        print("\n" + demo.stdout.split("\n\n")[-1])
        family = descendants(up.pid)
        assert len(family) >= 5  # kafka, sandbox, streams, sinks, ingest
        up.send_signal(signal.SIGINT)
        assert up.wait(120) == 0, out_file.read_text()[-3000:]
        time.sleep(0.5)
        assert [p for p in family if pid_alive(p)] == []
        assert "stopped" in out_file.read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
    assert re.search(r"Kafka ready at 127\.0\.0\.1:\d+", out_file.read_text())
    assert not pending, f"worker logs not clean: {pending[:3]}"


RAW_LIBRDKAFKA = re.compile(r"^%\d\|\d+\.\d+\|", re.M)  # librdkafka's own stderr format
ISO_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def log_problems(logs: dict[str, str]) -> list[str]:
    """Every line of a service log is a JSON object with an ISO-8601 UTC `ts`; no terminal control
    codes (Faust's spinner) and no raw librdkafka lines. Lines breaking the first rule fail at once;
    the two others are returned (the workers' Faust and producer set-up owns them)."""
    pending = []
    for name, text in logs.items():
        for line in text.splitlines():
            if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line):
                pending.append(f"{name}: control codes in {line!r}")
            elif RAW_LIBRDKAFKA.match(line):
                pending.append(f"{name}: raw librdkafka line {line[:100]!r}")
            else:
                event = json.loads(line)
                assert ISO_TS.match(event["ts"]), (name, line)
                assert "\n" not in event["msg"] or "exc_type" in event, (name, line)
    return pending


def test_a_broken_handler_fails_up_in_one_line_before_kafka_starts(tmp_path: Path) -> None:
    bots = bots_file(tmp_path / "bots.toml", "http://127.0.0.1:9").read_text()
    (tmp_path / "bots.toml").write_text(bots.replace('handler = "botstream.streams.examples.faq"',
                                                     'handler = "botstream.streams.examples.fqa"', 1))
    env = {**os.environ, "BOTSTREAM_DATA_DIR": str(tmp_path / "data"), "BOTSTREAM_BOTS_FILE": str(tmp_path / "bots.toml")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    started = time.monotonic()
    up = subprocess.run([sys.executable, "-m", "botstream", "up"], env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode == 6, up.stdout + up.stderr  # botstream.core.exitcodes.ExitCode.HANDLER
    assert up.stdout == "" and up.stderr.count("\n") == 1
    assert up.stderr.startswith(f"botstream: error: {tmp_path / 'bots.toml'}:")
    assert "bot 'faq': handler 'botstream.streams.examples.fqa': no module named" in up.stderr
    assert not (tmp_path / "data" / "kafka").exists() and time.monotonic() - started < 30
