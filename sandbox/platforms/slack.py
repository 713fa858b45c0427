"""Slack Web API: `POST /api/chat.postMessage`, and the `response_url` of slash commands and interactions.

Slack reports failures as `{"ok":false,"error":"<code>"}` on HTTP 200; only rate limiting uses a
status (429 with `Retry-After`). Auth is `Authorization: Bearer xox?-...` or a `token` form field.

response_url: Slack hands one out in every slash command and interaction payload
(`https://hooks.slack.com/commands/T…/…/…`); posting JSON `{"text", "response_type", ...}` to it
answers in that conversation, ephemeral (only the user who acted sees it; the default) or
`in_channel`, at most five times within 30 minutes, answered with a plain `ok`. The sandbox serves
`POST /commands|actions|app/{team_id}/{channel}/{secret}`: `response_url(base, team, channel)` mints
one for test payloads (the channel sits where Slack keeps an opaque id, so the delivery is recorded
under it). No token is needed (the URL is the credential), no rate limit applies (whatever `limits.slack` says); a sixth use
answers 404 `used_url`, one more than 30 minutes after the first 404 `expired_url`, and a body with
neither text nor blocks 400 `no_text` (status codes of these errors: our choice, Slack documents the
codes' meaning, not their status).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from botstream.sandbox.config import SandboxConfig, SlackLimits
from botstream.sandbox.faults import ChatFault
from botstream.sandbox.http import Reply, Request, bytes_reply, json_reply, json_str, read_params
from botstream.sandbox.identity import short_id
from botstream.sandbox.limits import TokenBucket, whole_seconds
from botstream.sandbox.platforms.base import ALLOWED, Accepted, LimitVerdict, SendAttempt

__all__ = ["SlackApi", "MAX_TEXT", "RESPONSE_URL_PREFIXES", "format_ts", "response_url"]

MAX_TEXT = 40_000
TOKEN_RE = re.compile(r"xox[abpe]-[A-Za-z0-9-]+")
POST_MESSAGE = "/api/chat.postMessage"
RESPONSE_URL_PREFIXES = ("/commands/", "/actions/", "/app/")
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME_S = 30 * 60
RESPONSE_TYPES = ("ephemeral", "in_channel")
_TEXT_CT = ((b"content-type", b"text/plain; charset=utf-8"),)
_PATH = "__response_url_path__"  # kept with a response_url attempt's params, for its use count
_POSTED = (
    b'{"ok":true,"channel":%s,"ts":"%s","message":{"type":"message","subtype":"bot_message",'
    b'"text":%s,"ts":"%s","bot_id":"B%s","user":"U%s"}}'
)


def error(code: str, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Reply:
    return json_reply(status, {"ok": False, "error": code}, headers)


def text_reply(status: int, body: str) -> Reply:
    return Reply(status, body.encode(), _TEXT_CT)


def response_url(base_url: str, team_id: str, channel: str, kind: str = "commands") -> str:
    """A response_url this sandbox accepts, for the payload of a test slash command or interaction."""
    return f"{base_url.rstrip('/')}/{kind}/{team_id}/{channel}/{secrets.token_hex(12)}"


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
        self._response_urls: dict[str, tuple[float, int]] = {}  # path -> (first use, uses)

    def parse(self, req: Request) -> SendAttempt | Reply:
        if req.path.startswith(RESPONSE_URL_PREFIXES):
            return self._parse_response_url(req)
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

    def _parse_response_url(self, req: Request) -> SendAttempt | Reply:
        parts = req.path.split("/")  # ["", kind, team, channel, secret]
        if len(parts) != 5 or not all(parts[2:]):
            return text_reply(404, "invalid_url")
        _, _kind, _team, channel, secret = parts
        params = read_params(req)
        if params is None:
            return text_reply(400, "invalid_payload")
        response_type = str(params.get("response_type") or "ephemeral")
        if response_type not in RESPONSE_TYPES:
            return text_reply(400, "invalid_payload")
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text and not params.get("blocks") and not params.get("delete_original"):
            return text_reply(400, "no_text")
        if len(text) > MAX_TEXT:
            return text_reply(400, "msg_too_long")
        params[_PATH] = req.path
        return SendAttempt(f"response_url:{response_type}", short_id(secret), channel, text, params)

    def _use_response_url(self, path: str, wall: float) -> Reply | None:
        """Count a use of a response_url; the refusal when it is used up or expired."""
        first, uses = self._response_urls.get(path, (wall, 0))
        if uses >= RESPONSE_URL_USES:
            return text_reply(404, "used_url")
        if wall - first > RESPONSE_URL_LIFETIME_S:
            return text_reply(404, "expired_url")
        self._response_urls[path] = (first, uses + 1)
        return None

    def check_limits(self, attempt: SendAttempt, now: float, wall: float) -> LimitVerdict:
        if _PATH in attempt.params:  # a response_url: no rate limit, but five uses in 30 minutes
            refusal = self._use_response_url(attempt.params[_PATH], wall)
            return ALLOWED if refusal is None else LimitVerdict(refusal, "response_url")
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
        if attempt.method.startswith("response_url:"):
            return Accepted("", text_reply(200, "ok"))
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
