"""The ingest ASGI app: route, bound the body, let the platform adapter verify and normalize, hand
the records to the sink, and answer only once every record is durable.

    POST /webhooks/{platform}/{bot_id}   telegram, slack, discord, whatsapp, generic
    GET  /webhooks/whatsapp/{bot_id}     Meta's subscription handshake
    GET  /healthz                        alive (no fatal producer error)
    GET  /readyz                         broker reachable and producer healthy
    GET  /metrics                        Prometheus

Order of work for a webhook, cheapest refusal first: unknown platform / bot (404) -> method (405)
-> declared or streamed size (413, before or while reading) -> the adapter (401 signature, 415, 400,
or a handshake answered at once) -> encode, and 413 when a record or one a later stage derives from it
exceeds its topic's limit (`botstream.ingest.sizes`) -> produce + wait for every ack -> 2xx. A 4xx never
reaches the sink. A record that is not acknowledged within the ack deadline turns the whole answer
into 503 + Retry-After, even when its siblings of the same request were acked (a WhatsApp batch):
the platform redelivers the whole POST and the dedupe table drops the siblings' second copies.

Every request gets a correlation id (the caller's `X-Request-Id` when sane) that is returned in
`X-Request-Id`, stamped on the records and their headers, and on the request's log line.

Per-request work is kept to what the answer needs: the request's log line is DEBUG (a busy ingest
writes no line per request at INFO); refusals worth an operator's eye (401, 5xx) are counted and
logged as warnings at most once a minute per kind (`botstream.ingest.notices`); the metric children
are cached; and no tracing span is built unless tracing is on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from botstream.core import tracing
from botstream.core.bots import BotRegistry
from botstream.ingest.asgi import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    declared_length,
    lifespan,
    read_body,
    respond,
)
from botstream.ingest.correlation import correlation_id_from, traceparent_from
from botstream.ingest.errors import IngestError, MethodNotAllowed, NotFound
from botstream.ingest.metrics import UNKNOWN, IngestMetrics, render_metrics
from botstream.ingest.notices import RateLimitedWarnings
from botstream.ingest.platforms import ADAPTERS, InboundAdapter
from botstream.ingest.platforms.base import HandshakeResponse, Update, WebhookRequest
from botstream.ingest.sink import OutboundRecord, RecordSink
from botstream.ingest.sizes import SizeContract
from botstream.schemas.codec import Codec
from botstream.schemas.headers import CORRELATION_ID, PLATFORM, TRACEPARENT
from botstream.schemas.records import chat_key

log = logging.getLogger("botstream.ingest.access")
JSON = b"application/json"
WEBHOOK_PREFIX = "/webhooks/"
ALLOWED_METHODS: dict[str, tuple[str, ...]] = {"whatsapp": ("GET", "POST")}
POST_ONLY = ("POST",)
PROBE_METHODS = ("GET", "HEAD")
CLIENT_GONE = 499  # nginx's code for "client closed the request": logged and counted, never sent
WARN_STATUSES = frozenset({401, 503})  # refusals that point at a misconfiguration or an outage (500s log their exception)
Hook = Callable[[], Awaitable[None]]


@dataclass
class Answer:
    """What one webhook request is answered with, and what its log line and metrics say."""

    status: int
    body: bytes = b""
    content_type: bytes = b"text/plain"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    updates: int = 0
    reason: str | None = None


class IngestApp:
    """ASGI 3 application. Everything it touches is injected: the bots, the sink, the codec, the clock."""

    def __init__(
        self,
        *,
        bots: BotRegistry,
        sink: RecordSink,
        updates_topic: str,
        max_body_bytes: int,
        codec: Codec | None = None,
        metrics: IngestMetrics | None = None,
        adapters: Mapping[str, InboundAdapter] = ADAPTERS,
        clock: Callable[[], float] = time.time,
        retry_after_s: int = 5,
        sizes: SizeContract | None = None,
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
    ) -> None:
        self.bots = bots
        self.sink = sink
        self.updates_topic = updates_topic
        self.max_body_bytes = max_body_bytes
        self.codec = codec or Codec()
        self.metrics = metrics or IngestMetrics()
        self.adapters = adapters
        self.clock = clock
        self.retry_after = str(retry_after_s).encode()
        self.sizes = sizes
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        self.warnings = RateLimitedWarnings(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith(WEBHOOK_PREFIX):
                await self._webhook(scope, receive, send, path)
            else:
                await self._probe(scope, send, path)
        elif kind == "lifespan":
            await lifespan(receive, send, self._startup, self._shutdown)

    async def _startup(self) -> None:
        for hook in self.on_startup:
            await hook()

    async def _shutdown(self) -> None:
        for hook in reversed(self.on_shutdown):
            await hook()

    # -- webhooks ----------------------------------------------------------------------------------

    async def _webhook(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        correlation_id = correlation_id_from(headers.get("x-request-id"))
        labels = [UNKNOWN, UNKNOWN]  # platform, bot: filled in once known to be real
        try:
            answer = await self._handle(scope, receive, path, headers, correlation_id, labels)
        except IngestError as exc:
            answer = self._refusal(exc, labels[0])
        except ClientDisconnected:
            self._account(CLIENT_GONE, labels, 0, started, correlation_id, "client_disconnected", path)
            return
        except Exception:  # a bug, not the caller's fault: 500 (the platform retries), details in the log
            log.exception("webhook handling failed", extra={"correlation_id": correlation_id,
                                                            "platform": labels[0], "bot": labels[1]})
            answer = Answer(500, b'{"error":"internal_error"}', JSON, reason="internal_error")
        answer.headers.append((b"x-request-id", correlation_id.encode()))
        await respond(send, answer.status, answer.body, answer.content_type, answer.headers)
        self._account(answer.status, labels, answer.updates, started, correlation_id, answer.reason, path)

    async def _handle(self, scope: Scope, receive: Receive, path: str, headers: dict[str, str],
                      correlation_id: str, labels: list[str]) -> Answer:
        parts = path.split("/")  # ["", "webhooks", platform, bot_id]
        if len(parts) != 4:
            raise NotFound("unknown_route", "no such webhook URL")
        platform, bot_id = parts[2], parts[3]
        adapter = self.adapters.get(platform)
        if adapter is None:
            raise NotFound("unknown_platform", "no such platform")
        labels[0] = platform
        bot = self.bots.lookup(platform, bot_id)
        if bot is None:
            raise NotFound("unknown_bot", f"no {platform} bot with this id")
        labels[1] = bot.id
        method: str = scope["method"]
        allowed = ALLOWED_METHODS.get(platform, POST_ONLY)
        if method not in allowed:
            raise MethodNotAllowed(allowed)
        if method == "POST":
            limit = adapter.max_body_bytes or self.max_body_bytes
            body = await read_body(receive, limit, declared_length(headers))
        else:
            body = b""
        query_string: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}
        now = self.clock()
        outcome = adapter.handle(bot, WebhookRequest(method, path, headers, query, body), now=now,
                                 received_at_ms=int(now * 1000), correlation_id=correlation_id)
        if isinstance(outcome, HandshakeResponse):
            self.metrics.handshake(platform, bot.id)
            return Answer(outcome.status, outcome.body, outcome.content_type.encode())
        if outcome.updates:
            traceparent = traceparent_from(headers.get("traceparent"))
            records = self._records(outcome.updates, platform, correlation_id, traceparent)
            if tracing.enabled():
                with tracing.span("ingest.webhook", traceparent, platform=platform, correlation_id=correlation_id):
                    await self.sink.produce_all(records)
            else:
                await self.sink.produce_all(records)
            self.metrics.produced(platform, bot.id, len(outcome.updates))
        return Answer(outcome.status, outcome.body, outcome.content_type.encode(), updates=len(outcome.updates))

    def _records(self, updates: list[Update], platform: str, correlation_id: str,
                 traceparent: str) -> list[OutboundRecord]:
        """Encode each Update keyed by its chat, so one chat lands on one partition number everywhere."""
        topic = self.updates_topic
        headers = [(CORRELATION_ID, correlation_id.encode()), (PLATFORM, platform.encode()),
                   (TRACEPARENT, traceparent.encode())]
        records = []
        sizes = self.sizes
        for update in updates:
            update["traceparent"] = traceparent
            key = chat_key(update["platform"], update["bot_id"], update["chat_id"]).encode()
            value = self.codec.encode("update", update, topic=topic)
            if sizes is not None:
                sizes.check(update, key, value, headers)  # 413 before anything of the request is produced
            records.append(OutboundRecord(topic, key, value, headers))
        return records

    def _refusal(self, exc: IngestError, platform: str) -> Answer:
        answer = Answer(exc.status, json.dumps({"error": exc.reason}).encode(), JSON, reason=exc.reason)
        if exc.retriable:  # the platform should deliver it again (NotDurable: 503)
            self.metrics.unavailable(platform, exc.reason)
            answer.headers.append((b"retry-after", self.retry_after))
        elif 400 <= exc.status < 500:
            self.metrics.rejected(platform, exc.reason)
        if isinstance(exc, MethodNotAllowed):
            answer.headers.append((b"allow", ", ".join(exc.allowed).encode()))
        if exc.status == 413:
            # The rest of an oversized body is never read: closing is cheaper than draining it.
            answer.headers.append((b"connection", b"close"))
        return answer

    def _account(self, status: int, labels: list[str], updates: int, started: float, correlation_id: str,
                 reason: str | None, path: str) -> None:
        seconds = time.perf_counter() - started
        platform, bot = labels
        self.metrics.request(platform, bot, status, seconds)
        if status in WARN_STATUSES:
            self.warnings.warn((status, platform, reason), f"webhooks refused: {status} {reason} ({platform})",
                               {"platform": platform, "bot": bot, "status": status, "reason": reason,
                                "correlation_id": correlation_id})
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s -> %d, %d update(s), %.1f ms", path, status, updates, seconds * 1000,
                      extra={"platform": platform, "bot": bot, "status": status, "correlation_id": correlation_id,
                             "reason": reason})

    # -- probes --------------------------------------------------------------------------------------

    async def _probe(self, scope: Scope, send: Send, path: str) -> None:
        if path not in ("/healthz", "/readyz", "/metrics"):
            await respond(send, 404, b'{"error":"not_found"}', JSON)
            return
        if scope["method"] not in PROBE_METHODS:
            await respond(send, 405, b'{"error":"method_not_allowed"}', JSON, [(b"allow", b"GET, HEAD")])
            return
        if path == "/metrics":
            body, content_type = render_metrics()
            await respond(send, 200, body, content_type.encode())
            return
        status = self.sink.status()
        ok = status.alive if path == "/healthz" else status.ready
        payload: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
        if not ok:
            payload["reason"] = status.reason
        await respond(send, 200 if ok else 503, json.dumps(payload).encode(), JSON)
