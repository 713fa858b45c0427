"""The contract between the platform modules and the I/O shell, and what they share.

Every platform module exposes the same three names:

    build_request(bot: BotConfig, reply: dict) -> OutboundRequest
    classify(response: InboundResponse) -> Outcome
    TEXT_LIMIT: int

so the shell does `send(build_request(...))`, wraps what comes back in `InboundResponse` and acts on
`classify(...)`. Nothing here performs I/O; the bytes to send are fixed by `OutboundRequest.content`
(signatures are computed over exactly those bytes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from botstream.core.bots import BotConfig
from botstream.core.retry import parse_retry_after
from botstream.core.secret import MASK
from botstream.sinks.errors import InvalidReply, MissingCredential

HEADER_SEQ = "X-Botstream-Seq"
HEADER_REQUEST_ID = "X-Request-Id"
HEADER_TRACEPARENT = "traceparent"

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def encode_json(body: Any) -> bytes:
    """The one JSON encoding of request bodies: compact, UTF-8 (non-ASCII as is), stable for a given
    dict. orjson writes what json.dumps(separators=(",", ":"), ensure_ascii=False) writes, cheaper."""
    return orjson.dumps(body)


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTP call to make. `json` is the body (None: no body); send `content`, not a re-encoding.

    `redact` lists credential values inside `url`/`headers` (the Telegram token is in the path), so
    the repr and `describe()` can be logged safely.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None
    redact: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def content(self) -> bytes:
        return b"" if self.json is None else encode_json(self.json)

    def describe(self) -> str:
        url = self.url
        for value in self.redact:
            if value:
                url = url.replace(value, MASK)
        return f"{self.method} {url}"

    def __repr__(self) -> str:
        return f"OutboundRequest({self.describe()}, headers={sorted(self.headers)})"


@dataclass(frozen=True)
class InboundResponse:
    """A platform's answer as the classifiers need it: status, headers (keys lower-cased), raw body,
    and when it arrived (unix seconds, set by the shell), so a Retry-After date can be read without
    the classifiers reading a clock."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    received_at: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def json(self) -> Any | None:
        """The body as JSON, or None when it is not JSON (proxies answer 502 with HTML)."""
        try:
            return orjson.loads(self.body)
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            return None

    def json_object(self) -> dict[str, Any]:
        return as_object(self.json())

    def retry_after_s(self, default: float) -> float:
        """The wait the `Retry-After` header asks for (seconds or an HTTP date), else `default`."""
        seconds = parse_retry_after(self.headers.get("retry-after"), self.received_at)
        return default if seconds is None else seconds


def as_object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: platform bodies are read defensively."""
    return value if isinstance(value, dict) else {}


def common_headers(reply: Mapping[str, Any]) -> dict[str, str]:
    """Headers every request carries: the chat sequence (the sandbox checks order with it), the
    correlation id for tracing a reply across logs, and the W3C traceparent when there is one."""
    headers = {
        "Content-Type": "application/json",
        HEADER_SEQ: str(reply["chat_seq"]),
        HEADER_REQUEST_ID: str(reply["correlation_id"]),
    }
    if reply.get("traceparent"):
        headers[HEADER_TRACEPARENT] = str(reply["traceparent"])
    return headers


def credential(bot: BotConfig, key: str) -> str:
    try:
        value = bot.secret(key)
    except KeyError:
        raise MissingCredential(f"bot {bot.id!r} ({bot.platform}) has no credential {key!r}") from None
    if not value:
        raise MissingCredential(f"bot {bot.id!r} ({bot.platform}) has an empty credential {key!r}")
    return value


def check_platform(bot: BotConfig, reply: Mapping[str, Any], platform: str) -> None:
    if bot.platform != platform or reply.get("platform") != platform:
        raise InvalidReply(f"reply {reply.get('reply_id')!r} for platform {reply.get('platform')!r} "
                           f"given to the {platform} sink with bot {bot.id!r} ({bot.platform})")


def required(reply: Mapping[str, Any], key: str, why: str) -> str:
    value = reply.get(key)
    if value is None or value == "":
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: {key} is required {why}")
    return str(value)


def parsed_markup(reply: Mapping[str, Any]) -> Any | None:
    """The reply's markup JSON, parsed; a record with unreadable markup can never be sent."""
    markup = reply.get("markup")
    if markup is None:
        return None
    try:
        return json.loads(markup)
    except ValueError as exc:
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: markup is not JSON: {exc}") from None


def options(reply: Mapping[str, Any]) -> Mapping[str, str]:
    return reply.get("options") or {}


def option_flag(value: str) -> bool:
    return value.strip().lower() in TRUE_WORDS


def split_chat_id(reply: Mapping[str, Any], what: str) -> tuple[str, str]:
    """Split a two-part chat id such as Slack's "{team_id}/{channel}" at its first "/"."""
    chat_id = required(reply, "chat_id", "")
    head, sep, tail = chat_id.partition("/")
    if not sep or not head or not tail:
        raise InvalidReply(f"reply {reply.get('reply_id')!r}: chat_id {chat_id!r} is not {what}")
    return head, tail
