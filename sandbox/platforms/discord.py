"""Discord REST v10: `POST /api/v10/channels/{id}/messages` (`Authorization: Bot <token>`) and
interaction follow-ups `POST /api/v10/webhooks/{application_id}/{interaction_token}` (no auth).

Errors are `{"message":...,"code":N}` (plus `errors` for form validation). When limits are on,
every response of these routes carries the bucket's `X-RateLimit-*` headers, computed from the
same fixed window that refuses. Follow-ups are filed under chat = the interaction token.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from botstream.sandbox.config import DiscordLimits, SandboxConfig
from botstream.sandbox.faults import ChatFault
from botstream.sandbox.http import Headers, Reply, Request, bytes_reply, json_reply, json_str
from botstream.sandbox.identity import discord_bot_id
from botstream.sandbox.limits import FixedWindow, whole_seconds
from botstream.sandbox.platforms.base import ALLOWED, Accepted, LimitVerdict, SendAttempt

__all__ = ["DiscordApi", "MAX_CONTENT", "DISCORD_EPOCH_MS"]

MAX_CONTENT = 2000
MAX_NONCE = 25
DISCORD_EPOCH_MS = 1_420_070_400_000
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
CREATE, FOLLOWUP = "createMessage", "followup"
UNAUTHORIZED = json_reply(401, {"message": "401: Unauthorized", "code": 0})


def error(status: int, message: str, code: int, headers: Headers = (), **extra: Any) -> Reply:
    return json_reply(status, {"message": message, "code": code, **extra}, headers)


def form_error(field: str, code: str, message: str) -> Reply:
    return error(
        400, "Invalid Form Body", 50035, errors={field: {"_errors": [{"code": code, "message": message}]}}
    )


def bucket_hash(route: str, major: str) -> str:
    return hashlib.sha1(f"{route}:{major}".encode()).hexdigest()[:32]


class _Bucket:
    __slots__ = ("window", "hash")

    def __init__(self, window: FixedWindow, hash_: str) -> None:
        self.window = window
        self.hash = hash_


class DiscordApi:
    name = "discord"

    def __init__(self, config: SandboxConfig) -> None:
        self.configure(config, limits_changed=True)
        self.reset()

    def configure(self, config: SandboxConfig, *, limits_changed: bool) -> None:
        self._limits: DiscordLimits = config.limits.discord
        self._known = frozenset(config.bots.get("discord", ()))
        self._nonce_window = config.nonce_window_seconds
        if limits_changed:
            self._reset_limits()

    def _reset_limits(self) -> None:
        self._global: dict[str, FixedWindow] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def reset(self) -> None:
        self._last_snowflake = 0
        self._nonces: dict[tuple[str, str], tuple[float, Accepted]] = {}
        self._reset_limits()

    # -- validation ---------------------------------------------------------------------------

    def parse(self, req: Request) -> SendAttempt | Reply:
        parts = req.path.split("/")
        # ["", "api", "v10", "channels", id, "messages"] or ["", "api", "v10", "webhooks", app, token]
        if (
            len(parts) != 6
            or not parts[2].startswith("v")
            or parts[3] not in ("channels", "webhooks")
            or (parts[3] == "channels" and parts[5] != "messages")
        ):
            return error(404, "404: Not Found", 0)
        if req.method != "POST":
            return error(405, "405: Method Not Allowed", 0)
        if parts[3] == "channels":
            auth = req.headers.get("authorization", "")
            token = auth[4:].strip() if auth.startswith("Bot ") else ""
            if not token or " " in token or (self._known and token not in self._known):
                return UNAUTHORIZED
            if not parts[4].isdigit():
                return form_error("channel_id", "NUMBER_TYPE_COERCE", f'Value "{parts[4]}" is not snowflake.')
            bot, chat, route = discord_bot_id(token), parts[4], "channel"
        else:
            if not parts[4].isdigit() or not parts[5]:
                return error(404, "Unknown Webhook", 10015)
            bot, chat, route = parts[4], parts[5], "webhook"
        params = _json_object(req.body)
        if params is None:
            return error(400, "The request body contains invalid JSON.", 50109)
        content = params.get("content")
        content = "" if content is None else str(content)
        if len(content) > MAX_CONTENT:
            return form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
        if not content and not any(
            params.get(k) for k in ("embeds", "components", "sticker_ids", "poll", "attachments")
        ):
            return error(400, "Cannot send an empty message", 50006)
        nonce = params.get("nonce")
        if isinstance(nonce, str) and len(nonce) > MAX_NONCE:
            return form_error("nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE} or fewer in length.")
        return SendAttempt(CREATE if route == "channel" else FOLLOWUP, bot, chat, content, params)

    # -- limits and faults --------------------------------------------------------------------

    def check_limits(self, attempt: SendAttempt, now: float, wall: float) -> LimitVerdict:
        lim = self._limits
        if not lim.enabled:
            return ALLOWED
        route = "channel" if attempt.method == CREATE else "webhook"
        if route == "channel":
            glob = self._global.get(attempt.bot)
            if glob is None:
                glob = self._global[attempt.bot] = FixedWindow(lim.global_limit, lim.global_window_seconds)
            wait = glob.wait(now)
            if wait > 0.0:
                scope: Headers = ((b"x-ratelimit-global", b"true"), (b"x-ratelimit-scope", b"global"))
                return LimitVerdict(self._too_many(wait, True, scope), "global")
        else:
            glob = None  # interaction endpoints are not bound to the global limit
        key = (attempt.bot if route == "channel" else "webhook", attempt.chat)
        bucket = self._buckets.get(key)
        if bucket is None:
            template = "POST /channels/{id}/messages" if route == "channel" else "POST /webhooks/{id}/{token}"
            bucket = self._buckets[key] = _Bucket(
                FixedWindow(lim.channel_limit, lim.channel_window_seconds),
                bucket_hash(template, attempt.chat),
            )
        wait = bucket.window.wait(now)
        if wait > 0.0:
            headers = self._bucket_headers(bucket, now, wall) + ((b"x-ratelimit-scope", b"user"),)
            return LimitVerdict(self._too_many(wait, False, headers), "per_chat")
        bucket.window.take(now)
        if glob is not None:
            glob.take(now)
        return LimitVerdict(headers=self._bucket_headers(bucket, now, wall))

    def _bucket_headers(self, bucket: _Bucket, now: float, wall: float) -> Headers:
        w = bucket.window
        after = w.reset_after(now)
        return (
            (b"x-ratelimit-limit", str(w.limit).encode()),
            (b"x-ratelimit-remaining", str(w.remaining(now)).encode()),
            (b"x-ratelimit-reset", f"{wall + after:.3f}".encode()),
            (b"x-ratelimit-reset-after", f"{after:.3f}".encode()),
            (b"x-ratelimit-bucket", bucket.hash.encode()),
        )

    @staticmethod
    def _too_many(wait: float, is_global: bool, headers: Headers) -> Reply:
        body = {
            "message": "You are being rate limited.",
            "retry_after": round(wait, 3),
            "global": is_global,
            "code": 0,
        }
        return json_reply(429, body, ((b"retry-after", str(whole_seconds(wait)).encode()), *headers))

    def chat_fault_reply(self, attempt: SendAttempt, fault: ChatFault) -> Reply | None:
        if fault.kind == "forbidden":
            return error(403, "Missing Access", 50001)
        if fault.kind == "missing":
            if attempt.method == FOLLOWUP:
                return error(404, "Unknown Webhook", 10015)
            return error(404, "Unknown Channel", 10003)
        return None

    def server_error(self, status: int) -> Reply:
        return error(status, f"{status}: {_REASONS.get(status, 'Internal Server Error')}", 0)

    # -- acceptance ---------------------------------------------------------------------------

    def accept(self, attempt: SendAttempt, now: float, wall: float) -> Accepted:
        params = attempt.params
        nonce = params.get("nonce")
        nonce_key: tuple[str, str] | None = None
        if nonce is not None and params.get("enforce_nonce") is True:
            nonce_key = (attempt.bot, str(nonce))
            hit = self._nonces.get(nonce_key)
            if hit is not None and now < hit[0]:
                return Accepted(hit[1].message_id, hit[1].reply, fresh=False)
        snowflake = self._snowflake(wall)
        if attempt.method == CREATE and not any(map(params.get, _DECORATIONS)):
            stamp = datetime.fromtimestamp(wall, UTC).isoformat().encode()
            body = _PLAIN % (
                snowflake.encode(),
                json_str(attempt.text),
                attempt.chat.encode(),
                _author_json(attempt.bot),
                stamp,
            )
            accepted = Accepted(snowflake, bytes_reply(200, body))
        else:
            accepted = Accepted(snowflake, json_reply(200, self._message(attempt, snowflake, wall)))
        if nonce_key is not None:
            if len(self._nonces) > 10_000:
                self._nonces = {k: v for k, v in self._nonces.items() if v[0] > now}
            self._nonces[nonce_key] = (now + self._nonce_window, accepted)
        return accepted

    def _snowflake(self, wall: float) -> str:
        value = max((int(wall * 1000) - DISCORD_EPOCH_MS) << 22, self._last_snowflake + 1)
        self._last_snowflake = value
        return str(value)

    @staticmethod
    def _message(attempt: SendAttempt, snowflake: str, wall: float) -> dict[str, Any]:
        params = attempt.params
        webhook = attempt.method == FOLLOWUP
        channel_id = str(zlib.crc32(attempt.chat.encode()) << 22) if webhook else attempt.chat
        message: dict[str, Any] = {
            "id": snowflake,
            "type": 0,
            "content": attempt.text,
            "channel_id": channel_id,
            "author": _author(attempt.bot),
            "attachments": [],
            "embeds": params.get("embeds") or [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": bool(params.get("tts", False)),
            "timestamp": datetime.fromtimestamp(wall, UTC).isoformat(),
            "edited_timestamp": None,
            "flags": int(params.get("flags") or 0),
            "components": params.get("components") or [],
        }
        if params.get("nonce") is not None:
            message["nonce"] = params["nonce"]
        if webhook:
            message["webhook_id"] = attempt.bot
            message["application_id"] = attempt.bot
        return message


def _author(bot: str) -> dict[str, Any]:
    return {
        "id": bot,
        "username": "sandbox-bot",
        "discriminator": "0000",
        "global_name": None,
        "avatar": None,
        "bot": True,
    }


@functools.lru_cache(maxsize=1024)
def _author_json(bot: str) -> bytes:
    return json.dumps(_author(bot), separators=(",", ":")).encode()


# A channel message with nothing but content, serialised from a template (the hot path).
_DECORATIONS = ("embeds", "components", "nonce", "flags", "tts")
_PLAIN = (
    b'{"id":"%s","type":0,"content":%s,"channel_id":"%s","author":%s,"attachments":[],"embeds":[],'
    b'"mentions":[],"mention_roles":[],"pinned":false,"mention_everyone":false,"tts":false,'
    b'"timestamp":"%s","edited_timestamp":null,"flags":0,"components":[]}'
)


def _json_object(body: bytes) -> dict[str, Any] | None:
    if not body:
        return {}
    try:
        obj = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
