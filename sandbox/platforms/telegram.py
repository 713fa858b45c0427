"""Telegram Bot API: `POST /bot<token>/{sendMessage,editMessageText,sendChatAction}`.

Shapes: success `{"ok":true,"result":...}`; errors `{"ok":false,"error_code":N,"description":...}`
with `parameters.retry_after` (429) or `parameters.migrate_to_chat_id` (400) when they apply.
Method names are case-insensitive and parameters may come as JSON, form fields or query string,
as on the real Bot API. Text length is counted in code points.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from typing import Any

from botstream.sandbox.config import SandboxConfig, TelegramLimits
from botstream.sandbox.faults import ChatFault
from botstream.sandbox.http import Reply, Request, bytes_reply, json_reply, json_str, read_params
from botstream.sandbox.limits import Limiter, SlidingWindowLog, TokenBucket, acquire_all, whole_seconds
from botstream.sandbox.platforms.base import ALLOWED, Accepted, LimitVerdict, SendAttempt

__all__ = ["TelegramApi", "TOKEN_RE", "MAX_TEXT"]

TOKEN_RE = re.compile(r"(\d{1,20}):[A-Za-z0-9_-]{1,128}")
MAX_TEXT = 4096
CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)  # fmt: skip
_METHODS = {
    "sendmessage": "sendMessage",
    "editmessagetext": "editMessageText",
    "sendchataction": "sendChatAction",
}
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def error(code: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_reply(code, body)


def too_many_requests(retry_after: int) -> Reply:
    return error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


def canonical_chat(value: Any) -> str | None:
    """Integer ids in canonical form ("-100123"), `@username` as given; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("@") and len(s) > 1:
            return s
        try:
            return str(int(s))
        except ValueError:
            return None
    return None


def is_group(chat: str) -> bool:
    """Negative ids are groups/supergroups/channels; `@username` targets are public channels."""
    return chat.startswith(("-", "@"))


def chat_object(chat: str) -> dict[str, Any]:
    if chat.startswith("@"):
        return {
            "id": -1000000000000 - zlib.crc32(chat.encode()),
            "title": chat[1:],
            "username": chat[1:],
            "type": "channel",
        }
    cid = int(chat)
    if cid > 0:
        return {"id": cid, "first_name": "Sandbox User", "type": "private"}
    kind = "supergroup" if chat.startswith("-100") and len(chat) >= 14 else "group"  # -100 + 10 digits
    return {"id": cid, "title": "Sandbox Group", "type": kind}


class TelegramApi:
    name = "telegram"

    def __init__(self, config: SandboxConfig) -> None:
        self.configure(config, limits_changed=True)
        self.reset()

    def configure(self, config: SandboxConfig, *, limits_changed: bool) -> None:
        self._limits: TelegramLimits = config.limits.telegram
        self._known = frozenset(config.bots.get("telegram", ()))
        self._keep = config.delivery_log_limit or 1 << 62
        if limits_changed:
            self._reset_limits()

    def _reset_limits(self) -> None:
        self._chat_buckets: dict[tuple[str, str], TokenBucket] = {}
        self._bot_buckets: dict[tuple[str, bool], TokenBucket] = {}
        self._group_windows: dict[tuple[str, str], SlidingWindowLog] = {}

    def reset(self) -> None:
        self._last_id: dict[tuple[str, str], int] = {}
        self._texts: dict[tuple[str, str], dict[int, str]] = {}
        self._reset_limits()

    # -- validation ---------------------------------------------------------------------------

    def parse(self, req: Request) -> SendAttempt | Reply:
        token, sep, raw_method = req.path[4:].partition("/")
        m = TOKEN_RE.fullmatch(token)
        if not sep or m is None:
            return error(404, "Not Found")
        if self._known and token not in self._known:
            return error(401, "Unauthorized")
        method = _METHODS.get(raw_method.lower())
        if method is None:
            return error(404, "Not Found")
        if req.method not in ("POST", "GET"):
            return error(405, "Method Not Allowed")
        params = read_params(req, with_query=True)
        if params is None:
            return error(400, "Bad Request: can't parse JSON object")
        bot = m.group(1)
        raw_chat = params.get("chat_id")
        if raw_chat is None or raw_chat == "":
            return error(400, "Bad Request: chat_id is empty")
        chat = canonical_chat(raw_chat)
        if chat is None:
            return error(400, "Bad Request: chat not found")
        if method == "sendChatAction":
            action = params.get("action")
            if not action:
                return error(400, "Bad Request: action is empty")
            if action not in CHAT_ACTIONS:
                return error(400, "Bad Request: wrong parameter action in request")
            return SendAttempt(method, bot, chat, "", params, records=False, limited=False)
        text = params.get("text")
        if text is None or text == "":
            return error(400, "Bad Request: message text is empty")
        text = str(text)
        if len(text) > MAX_TEXT:
            return error(400, "Bad Request: message is too long")
        if method == "editMessageText":
            return self._parse_edit(bot, chat, text, params)
        return SendAttempt(method, bot, chat, text, params)

    def _parse_edit(self, bot: str, chat: str, text: str, params: dict[str, Any]) -> SendAttempt | Reply:
        raw_id = params.get("message_id")
        if raw_id is None or raw_id == "":
            return error(400, "Bad Request: message identifier is not specified")
        try:
            message_id = int(raw_id)
        except (TypeError, ValueError):
            return error(400, "Bad Request: message identifier is not specified")
        current = self._texts.get((bot, chat), {}).get(message_id)
        if current is None:
            return error(400, "Bad Request: message to edit not found")
        if current == text:
            return error(400, _NOT_MODIFIED)
        params["message_id"] = message_id
        return SendAttempt("editMessageText", bot, chat, text, params)

    # -- limits and faults --------------------------------------------------------------------

    def check_limits(self, attempt: SendAttempt, now: float, wall: float) -> LimitVerdict:
        lim = self._limits
        if not lim.enabled:
            return ALLOWED
        key = (attempt.bot, attempt.chat)
        chat_b = self._chat_buckets.get(key)
        if chat_b is None:
            chat_b = self._chat_buckets[key] = TokenBucket(lim.per_chat_per_second, lim.per_chat_burst)
        paid = attempt.params.get("allow_paid_broadcast") in (True, "true", "True", "1")
        bot_key = (attempt.bot, paid)
        bot_b = self._bot_buckets.get(bot_key)
        if bot_b is None:
            rate = lim.paid_per_bot_per_second if paid else lim.per_bot_per_second
            burst = max(1, int(lim.paid_per_bot_per_second)) if paid else lim.per_bot_burst
            bot_b = self._bot_buckets[bot_key] = TokenBucket(rate, burst)
        checks: list[tuple[str, Limiter]] = [("global", bot_b), ("per_chat", chat_b)]
        if is_group(attempt.chat):
            window = self._group_windows.get(key)
            if window is None:
                window = self._group_windows[key] = SlidingWindowLog(
                    lim.group_per_window, lim.group_window_seconds
                )
            checks.append(("group", window))
        refusal = acquire_all(checks, now)
        if refusal is None:
            return ALLOWED
        return LimitVerdict(too_many_requests(whole_seconds(refusal.retry_after)), refusal.kind)

    def chat_fault_reply(self, attempt: SendAttempt, fault: ChatFault) -> Reply | None:
        if fault.kind == "missing":
            return error(400, "Bad Request: chat not found")
        if fault.kind == "migrate":
            new = canonical_chat(fault.new_chat)
            target: int | str = int(new) if new is not None and not new.startswith("@") else fault.new_chat
            return error(
                400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=target
            )
        chat = attempt.chat
        if chat.startswith("@"):
            return error(403, "Forbidden: bot is not a member of the channel chat")
        if is_group(chat):
            return error(403, "Forbidden: bot was kicked from the group chat")
        return error(403, "Forbidden: bot was blocked by the user")

    def server_error(self, status: int) -> Reply:
        return error(status, _REASONS.get(status, "Internal Server Error"))

    # -- acceptance ---------------------------------------------------------------------------

    def accept(self, attempt: SendAttempt, now: float, wall: float) -> Accepted:
        if attempt.method == "sendChatAction":
            return Accepted("", CHAT_ACTION_OK)
        key = (attempt.bot, attempt.chat)
        texts = self._texts.get(key)
        if texts is None:
            texts = self._texts[key] = {}
        date = int(wall)
        if attempt.method == "editMessageText":
            message_id = attempt.params["message_id"]
            tail = b',"edit_date":%d}}' % date
        else:
            message_id = self._last_id.get(key, 0) + 1
            self._last_id[key] = message_id
            texts.pop(message_id - self._keep, None)
            tail = b"}}"
        texts[message_id] = attempt.text
        body = _MESSAGE % (
            message_id,
            _sender_json(attempt.bot),
            _chat_json(attempt.chat),
            date,
            json_str(attempt.text),
        )
        return Accepted(str(message_id), bytes_reply(200, body + tail))


CHAT_ACTION_OK = json_reply(200, {"ok": True, "result": True})
_MESSAGE = b'{"ok":true,"result":{"message_id":%d,"from":%s,"chat":%s,"date":%d,"text":%s'


@functools.lru_cache(maxsize=1024)
def _sender_json(bot: str) -> bytes:
    sender = {"id": int(bot), "is_bot": True, "first_name": "Sandbox Bot", "username": f"sandbox_{bot}_bot"}
    return json.dumps(sender, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=65536)
def _chat_json(chat: str) -> bytes:
    return json.dumps(chat_object(chat), separators=(",", ":"), ensure_ascii=False).encode()
