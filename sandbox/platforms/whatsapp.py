"""WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages`, `Authorization: Bearer`.

Errors use the Graph API envelope `{"error":{"message","type","code","error_data","fbtrace_id"}}`.
Throttling is signalled by error code, not status: Meta documents HTTP 400 for 130429 (throughput)
and 131056 (pair rate) — 429 is only used for the app-level code 4 — so the sandbox answers 400
and, like Meta, gives no retry-after. `error_subcode` is deprecated from v16.0 and only appears
for older versions in the path. Only `type: "text"` messages are supported.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from botstream.sandbox.config import SandboxConfig, WhatsAppLimits
from botstream.sandbox.faults import ChatFault
from botstream.sandbox.http import Reply, Request, bytes_reply, json_reply, json_str, read_params
from botstream.sandbox.limits import TokenBucket, acquire_all
from botstream.sandbox.platforms.base import ALLOWED, Accepted, LimitVerdict, SendAttempt

__all__ = ["WhatsAppApi", "MAX_TEXT"]

MAX_TEXT = 4096
VERSION_RE = re.compile(r"v(\d+)(?:\.\d+)?")
THROUGHPUT_DETAILS = "Cloud API message throughput has been reached."
PAIR_DETAILS = (
    "Message failed to send because there were too many messages sent from this phone number "
    "to the same phone number in a short period of time."
)
_SENT = b'{"messaging_product":"whatsapp","contacts":[{"input":%s,"wa_id":"%s"}],"messages":[{"id":"%s"}]}'
_SERVER_ERRORS = {500: (131000, "Something went wrong"), 503: (2, "Service temporarily unavailable")}


class WhatsAppApi:
    name = "whatsapp"

    def __init__(self, config: SandboxConfig) -> None:
        self.configure(config, limits_changed=True)
        self.reset()

    def configure(self, config: SandboxConfig, *, limits_changed: bool) -> None:
        self._limits: WhatsAppLimits = config.limits.whatsapp
        self._known = frozenset(config.bots.get("whatsapp", ()))
        if limits_changed:
            self._reset_limits()

    def _reset_limits(self) -> None:
        self._numbers: dict[str, TokenBucket] = {}
        self._pairs: dict[tuple[str, str], TokenBucket] = {}

    def reset(self) -> None:
        self._counter = 0
        self._reset_limits()

    def _trace_id(self) -> str:
        self._counter += 1
        return "A" + base64.urlsafe_b64encode(self._counter.to_bytes(8, "big")).decode().rstrip("=")

    def error(
        self, status: int, code: int, message: str, details: str = "", subcode: int | None = None
    ) -> Reply:
        err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
        if details:
            err["error_data"] = {"messaging_product": "whatsapp", "details": details}
        if subcode is not None:
            err["error_subcode"] = subcode
        err["fbtrace_id"] = self._trace_id()
        return json_reply(status, {"error": err})

    def parse(self, req: Request) -> SendAttempt | Reply:
        parts = req.path.split("/")
        version = VERSION_RE.fullmatch(parts[1]) if len(parts) == 4 else None
        if version is None or not parts[2].isdigit() or parts[3] != "messages":
            return self.error(400, 2500, f"Unknown path components: {req.path}")
        if req.method != "POST":
            return self.error(400, 100, f"Unsupported {req.method.lower()} request.")
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token:
            return self.error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if self._known and token not in self._known:
            return self.error(401, 190, "Error validating access token: The session is invalid.")
        params = read_params(req)
        if params is None:
            return self.error(400, 100, "(#100) Invalid parameter", "Request body is not valid JSON")
        if params.get("messaging_product") != "whatsapp":
            return self.error(400, 100, "(#100) The parameter messaging_product is required.")
        to = params.get("to")
        wa_id = "".join(ch for ch in str(to) if ch.isdigit()) if to is not None else ""
        if not wa_id:
            return self.error(400, 100, "(#100) The parameter to is required.")
        kind = params.get("type", "text")
        if kind != "text":
            return self.error(
                400, 100, "(#100) Invalid parameter", f"Param type {kind!r} is not supported by the sandbox"
            )
        text = params.get("text")
        body = text.get("body") if isinstance(text, dict) else None
        if not body:
            return self.error(400, 100, "(#100) The parameter text['body'] is required.")
        body = str(body)
        if len(body) > MAX_TEXT:
            return self.error(
                400, 100, f"(#100) Param text['body'] must be at most {MAX_TEXT} characters long."
            )
        params["_to"], params["_legacy"] = str(to), int(version.group(1)) < 16
        return SendAttempt("messages", parts[2], wa_id, body, params)

    def check_limits(self, attempt: SendAttempt, now: float, wall: float) -> LimitVerdict:
        lim = self._limits
        if not lim.enabled:
            return ALLOWED
        number = self._numbers.get(attempt.bot)
        if number is None:
            number = self._numbers[attempt.bot] = TokenBucket(lim.per_number_per_second, lim.per_number_burst)
        key = (attempt.bot, attempt.chat)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = TokenBucket(1.0 / lim.pair_interval_seconds, lim.pair_burst)
        refusal = acquire_all((("global", number), ("pair", pair)), now)
        if refusal is None:
            return ALLOWED
        legacy = attempt.params["_legacy"]
        if refusal.kind == "global":
            reply = self.error(
                400, 130429, "(#130429) Rate limit hit", THROUGHPUT_DETAILS, 2494055 if legacy else None
            )
        else:
            reply = self.error(
                400,
                131056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                PAIR_DETAILS,
                2494055 if legacy else None,
            )
        return LimitVerdict(reply, refusal.kind)

    def chat_fault_reply(self, attempt: SendAttempt, fault: ChatFault) -> Reply | None:
        if fault.kind == "forbidden":
            return self.error(
                400,
                131026,
                "(#131026) Message undeliverable",
                "Message could not be delivered to the recipient.",
            )
        if fault.kind == "missing":
            return self.error(400, 100, "(#100) Invalid parameter", "Recipient is not a valid WhatsApp user.")
        return None

    def server_error(self, status: int) -> Reply:
        code, message = _SERVER_ERRORS.get(status, (1, "An unknown error occurred"))
        return self.error(status, code, message)

    def accept(self, attempt: SendAttempt, now: float, wall: float) -> Accepted:
        self._counter += 1
        raw = f"{attempt.bot}:{attempt.chat}:{self._counter}".encode()
        wamid = "wamid." + base64.b64encode(raw).decode()
        body = _SENT % (json_str(attempt.params["_to"]), attempt.chat.encode(), wamid.encode())
        return Accepted(wamid, bytes_reply(200, body))
