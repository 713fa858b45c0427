"""Slack Web API: `POST /api/chat.postMessage`.

Slack reports failures as `{"ok":false,"error":"<code>"}` on HTTP 200; only rate limiting uses a
status (429 with `Retry-After`). Auth is `Authorization: Bearer xox?-...` or a `token` form field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from botstream.sandbox.config import SandboxConfig, SlackLimits
from botstream.sandbox.faults import ChatFault
from botstream.sandbox.http import Reply, Request, bytes_reply, json_reply, json_str, read_params
from botstream.sandbox.identity import short_id
from botstream.sandbox.limits import TokenBucket, whole_seconds
from botstream.sandbox.platforms.base import ALLOWED, Accepted, LimitVerdict, SendAttempt

__all__ = ["SlackApi", "MAX_TEXT", "format_ts"]

MAX_TEXT = 40_000
TOKEN_RE = re.compile(r"xox[abpe]-[A-Za-z0-9-]+")
POST_MESSAGE = "/api/chat.postMessage"
_POSTED = (
    b'{"ok":true,"channel":%s,"ts":"%s","message":{"type":"message","subtype":"bot_message",'
    b'"text":%s,"ts":"%s","bot_id":"B%s","user":"U%s"}}'
)


def error(code: str, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
    return json_reply(status, {"ok": False, "error": code}, headers)


def format_ts(micros: int) -> str:
    """Slack message ids are "seconds.microseconds" strings, unique per channel."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class SlackApi:
    name = "slack"

    def __init__(self, config: SandboxConfig) -> None:
        self.configure(config, limits_changed=True)
        self.reset()

    def configure(self, config: SandboxConfig, *, limits_changed: bool) -> None:
        self._limits: SlackLimits = config.limits.slack
        self._known = frozenset(config.bots.get("slack", ()))
        if limits_changed:
            self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def reset(self) -> None:
        self._last_ts: dict[tuple[str, str], int] = {}
        self._buckets = {}

    def parse(self, req: Request) -> SendAttempt | Reply:
        if req.path != POST_MESSAGE:
            return json_reply(404, {"ok": False, "error": "unknown_method", "req_method": req.path[5:]})
        params = read_params(req)
        if params is None:
            return error("invalid_json")
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else str(params.get("token") or "")
        if not token:
            return error("not_authed")
        if TOKEN_RE.fullmatch(token) is None or (self._known and token not in self._known):
            return error("invalid_auth")
        channel = params.get("channel")
        if not channel or not isinstance(channel, str):
            return error("channel_not_found")
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return error("invalid_blocks")
        if blocks is not None and not isinstance(blocks, list):
            return error("invalid_blocks")
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text and not blocks and not params.get("attachments"):
            return error("no_text")
        if len(text) > MAX_TEXT:
            return error("msg_too_long")
        params["blocks"] = blocks
        return SendAttempt("chat.postMessage", short_id(token), channel, text, params)

    def check_limits(self, attempt: SendAttempt, now: float, wall: float) -> LimitVerdict:
        lim = self._limits
        if not lim.enabled:
            return ALLOWED
        key = (attempt.bot, attempt.chat)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(lim.per_channel_per_second, lim.per_channel_burst)
        wait = bucket.wait(now)
        if wait <= 0.0:
            bucket.take(now)
            return ALLOWED
        secs = whole_seconds(wait)
        return LimitVerdict(error("ratelimited", 429, ((b"retry-after", str(secs).encode()),)), "per_chat")

    def chat_fault_reply(self, attempt: SendAttempt, fault: ChatFault) -> Reply | None:
        if fault.kind == "forbidden":
            return error("not_in_channel")
        if fault.kind == "missing":
            return error("channel_not_found")
        return None

    def server_error(self, status: int) -> Reply:
        return error("internal_error", status)

    def accept(self, attempt: SendAttempt, now: float, wall: float) -> Accepted:
        key = (attempt.bot, attempt.chat)
        micros = max(int(wall * 1_000_000), self._last_ts.get(key, 0) + 1)
        self._last_ts[key] = micros
        ts = format_ts(micros)
        bot_tag = attempt.bot[:10].upper()
        if not attempt.params.get("blocks") and not attempt.params.get("thread_ts"):
            body = _POSTED % (
                json_str(attempt.chat),
                ts.encode(),
                json_str(attempt.text),
                ts.encode(),
                bot_tag.encode(),
                bot_tag.encode(),
            )
            return Accepted(ts, bytes_reply(200, body))
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": attempt.text,
            "ts": ts,
            "bot_id": "B" + bot_tag,
            "user": "U" + bot_tag,
        }
        if attempt.params.get("blocks"):
            message["blocks"] = attempt.params["blocks"]
        if attempt.params.get("thread_ts"):
            message["thread_ts"] = attempt.params["thread_ts"]
        return Accepted(
            ts, json_reply(200, {"ok": True, "channel": attempt.chat, "ts": ts, "message": message})
        )
