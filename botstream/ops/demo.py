"""`botstream demo`: signed synthetic traffic for a running stack (`botstream up`), with a live view.

Every bot of the bots file gets webhooks signed exactly as its platform signs them (the same public
signing functions ingest verifies with), spread over `--chats` chats at `--rate` requests/s, with a
share of redeliveries (the same body and id again: dedupe must drop them). Progress is read back from
the sandbox: replies that carry the demo's marker give the end-to-end latency (sent → delivered).
A request that fails is counted with its reason (connection refused, timeout, the status and what
ingest said), so the summary says why.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from botstream.core.bots import BotConfig, BotRegistry
from botstream.core.errors import BotstreamError

# The Discord key pair of deploy/bots.example.toml's `faq-discord` bot — a demo credential for the
# local sandbox only; the demo signs Discord interactions only for a bot with this public key.
DEMO_DISCORD_PRIVATE_KEY = "d71dd3f77791ce3aee57888fe8ee1ada8e29ec403835c29eb5075ae90151a4e6"


@dataclass
class Sent:
    platform: str
    marker: str
    at: float
    status: int | None = None


@dataclass
class DemoStats:
    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    acked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    redeliveries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    reasons: Counter[str] = field(default_factory=Counter)  # why requests failed -> how many

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"platforms": {}, "errors": dict(self.reasons.most_common())}
        for platform in sorted(self.sent):
            lat = self.latencies_ms.get(platform, [])
            out["platforms"][platform] = {
                "sent": self.sent[platform], "redeliveries": self.redeliveries[platform],
                "acked": self.acked[platform], "errors": self.errors[platform],
                "delivered": self.delivered[platform],
                "e2e_p50_ms": percentile(lat, 0.5), "e2e_p99_ms": percentile(lat, 0.99)}
        return out


class DemoError(BotstreamError):
    """The demo cannot run (ingest unreachable, no bot it can sign for)."""


def failure_reason(exc: BaseException | None = None, response: httpx.Response | None = None) -> str:
    """One line on why a webhook request failed."""
    if response is not None:
        detail = ""
        try:
            body = response.json()
            if isinstance(body, dict):
                detail = str(body.get("detail") or body.get("error") or body.get("message") or "")
        except ValueError:
            detail = response.text.strip()
        detail = " ".join(detail.split())[:120]
        retry = response.headers.get("retry-after")
        return (f"HTTP {response.status_code} {response.reason_phrase}"
                + (f": {detail}" if detail else "") + (f" (Retry-After {retry})" if retry else ""))
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:  # httpx -> httpcore -> OSError -> ConnectionRefusedError
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
            cause = cause.__cause__ or cause.__context__
        return f"cannot connect: {' '.join(str(exc).split()) or type(exc).__name__}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown"


def validate(rate: float, chats: int, duration: float, redelivery_ratio: float) -> None:
    """Arguments run_demo can work with; ValueError naming the bad one otherwise."""
    if not rate > 0 or rate > 100_000:
        raise ValueError(f"rate must be above 0 and at most 100000 per second, not {rate:g}")
    if chats < 1:
        raise ValueError(f"chats must be at least 1, not {chats}")
    if not duration > 0:
        raise ValueError(f"duration must be above 0 seconds, not {duration:g}")
    if not 0 <= redelivery_ratio < 1:
        raise ValueError(f"redeliveries must be a share in [0, 1), not {redelivery_ratio:g}")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def signed_request(bot: BotConfig, seq: int, chat: int, marker: str) -> tuple[str, bytes, dict[str, str]] | None:
    """(path, body, headers) of one webhook for `bot`, or None when the demo cannot sign for it."""
    from botstream.ingest.platforms.hub_signature import hub_signature
    from botstream.ingest.platforms.slack import slack_signature

    now = int(time.time())
    path = f"/webhooks/{bot.platform}/{bot.id}"
    json_headers = {"content-type": "application/json"}
    if bot.platform == "telegram":
        body = json.dumps({"update_id": seq, "message": {
            "message_id": seq, "date": now, "chat": {"id": 1000 + chat, "type": "private"},
            "from": {"id": 1000 + chat, "is_bot": False}, "text": marker}}).encode()
        return path, body, {**json_headers, "x-telegram-bot-api-secret-token": bot.secret("secret_token")}
    if bot.platform == "whatsapp":
        phone = bot.secret("phone_number_id")
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "demo", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone},
                                           "messages": [{"from": f"4915100{chat:04d}", "id": f"wamid.{marker}",
                                                         "timestamp": str(now), "type": "text",
                                                         "text": {"body": marker}}]}}]}]}).encode()
        return path, body, {**json_headers, "x-hub-signature-256": hub_signature(bot.secret("app_secret"), body)}
    if bot.platform == "slack":
        body = json.dumps({"type": "event_callback", "team_id": "TDEMO", "event_id": f"Ev{seq}",
                           "event": {"type": "message", "channel": f"C{chat}", "user": f"U{chat}",
                                     "text": marker, "ts": f"{now}.{seq:06d}"}}).encode()
        stamp = str(now)
        return path, body, {**json_headers, "x-slack-request-timestamp": stamp,
                            "x-slack-signature": slack_signature(bot.secret("signing_secret"), stamp, body)}
    if bot.platform == "discord":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(DEMO_DISCORD_PRIVATE_KEY))
        if key.public_key().public_bytes_raw().hex() != bot.secret("public_key"):
            return None
        body = json.dumps({"type": 2, "id": str(seq), "application_id": bot.secret("application_id"),
                           "token": f"demo-{marker}", "channel_id": str(9000 + chat), "user": {"id": str(chat)},
                           "data": {"name": "help"}}).encode()
        stamp = str(now)
        return path, body, {**json_headers, "x-signature-timestamp": stamp,
                            "x-signature-ed25519": key.sign(stamp.encode() + body).hex()}
    if bot.platform == "generic":
        body = json.dumps({"id": marker, "chat_id": str(chat), "text": marker}).encode()
        return path, body, {**json_headers, "x-hub-signature-256": hub_signature(bot.secret("secret"), body)}
    return None


async def run_demo(bots: BotRegistry, ingest_url: str, sandbox_url: str | None, *, rate: float, chats: int,
                   duration: float, redelivery_ratio: float = 0.05, seed: int = 7,
                   progress: Any = print, settle_s: float = 5.0) -> DemoStats:
    validate(rate, chats, duration, redelivery_ratio)
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    stats = DemoStats()
    sent: dict[str, Sent] = {}
    history: list[tuple[BotConfig, str, bytes, dict[str, str]]] = []
    targets = [b for b in bots.values() if signed_request(b, 0, 0, "probe") is not None]
    if not targets:
        raise DemoError("no bot in the bots file that the demo can sign for")
    seen_deliveries = 0
    async with httpx.AsyncClient(base_url=ingest_url, timeout=10, limits=httpx.Limits(max_connections=64)) as client, \
            httpx.AsyncClient(timeout=10) as sandbox:
        try:
            await client.get("/healthz")
        except httpx.HTTPError as exc:
            raise DemoError(f"cannot reach ingest at {ingest_url}: {failure_reason(exc)} "
                            "(is `botstream up` running? --ingest URL points elsewhere)") from None

        async def send(bot: BotConfig, path: str, body: bytes, headers: dict[str, str], marker: str | None) -> None:
            try:
                r = await client.post(path, content=body, headers=headers)
            except httpx.HTTPError as exc:
                stats.errors[bot.platform] += 1
                stats.reasons[f"{bot.platform}: {failure_reason(exc)}"] += 1
                return
            if 200 <= r.status_code < 300:
                stats.acked[bot.platform] += 1
                if marker and marker in sent:
                    sent[marker].status = r.status_code
            else:
                stats.errors[bot.platform] += 1
                stats.reasons[f"{bot.platform}: {failure_reason(response=r)}"] += 1

        async def poll_sandbox() -> None:
            nonlocal seen_deliveries
            if not sandbox_url:
                return
            try:
                entries = (await sandbox.get(f"{sandbox_url}/_sandbox/deliveries")).json()
            except (httpx.HTTPError, ValueError):
                return
            entries = entries.get("deliveries", entries) if isinstance(entries, dict) else entries
            for entry in entries[seen_deliveries:]:
                text = entry.get("text") or ""
                stats.delivered[entry["platform"]] += 1
                marker = next((w for w in text.split() if w.startswith(f"demo-{run}-")), None)
                if marker and marker in sent:
                    stats.latencies_ms[entry["platform"]].append(entry["arrival_ms"] - sent[marker].at * 1000)
            seen_deliveries = len(entries)

        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        next_progress = start + 1
        seq = int(time.time() * 1000) % 1_000_000_000
        interval = 1.0 / rate
        due = start
        while time.monotonic() - start < duration:
            now = time.monotonic()
            if now < due:
                await asyncio.sleep(due - now)
            due += interval
            if history and rng.random() < redelivery_ratio:
                bot, path, body, headers = rng.choice(history)
                stats.redeliveries[bot.platform] += 1
                marker = None
            else:
                seq += 1
                bot = targets[seq % len(targets)]
                marker = f"demo-{run}-{seq}"
                req = signed_request(bot, seq, rng.randrange(chats), marker)
                assert req is not None
                path, body, headers = req
                history.append((bot, path, body, headers))
                sent[marker] = Sent(bot.platform, marker, time.time())
            stats.sent[bot.platform] += 1
            task = asyncio.create_task(send(bot, path, body, headers, marker))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if time.monotonic() >= next_progress:
                next_progress += 1
                await poll_sandbox()
                progress(progress_line(stats, time.monotonic() - start))
        await asyncio.gather(*tasks)
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:  # let the last replies arrive
            await asyncio.sleep(1)
            await poll_sandbox()
            progress(progress_line(stats, time.monotonic() - start))
    return stats


def progress_line(stats: DemoStats, elapsed: float) -> str:
    lat = [v for vs in stats.latencies_ms.values() for v in vs]
    p99 = percentile(lat, 0.99)
    top = stats.reasons.most_common(1)
    return (f"\r[{elapsed:5.1f}s] sent {sum(stats.sent.values())}  acked {sum(stats.acked.values())}  "
            f"errors {sum(stats.errors.values())}  delivered {sum(stats.delivered.values())}  "
            f"p99 end-to-end {'-' if p99 is None else f'{p99:.0f} ms'}"
            + (f"  (most errors: {top[0][0]})" if top else ""))


def summary_table(stats: DemoStats) -> str:
    rows = ["| platform | sent | redeliveries | acked (2xx) | errors | delivered | e2e p50 | e2e p99 |",
            "|---|---|---|---|---|---|---|---|"]
    for platform in sorted(stats.sent):
        lat = stats.latencies_ms.get(platform, [])
        p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
        rows.append(f"| {platform} | {stats.sent[platform]} | {stats.redeliveries[platform]} | "
                    f"{stats.acked[platform]} | {stats.errors[platform]} | {stats.delivered[platform]} | "
                    f"{'-' if p50 is None else f'{p50:.0f} ms'} | {'-' if p99 is None else f'{p99:.0f} ms'} |")
    if stats.reasons:
        rows += ["", "Why requests failed:"]
        rows += [f"  {count:6}  {reason}" for reason, count in stats.reasons.most_common(10)]
    return "\n".join(rows)
