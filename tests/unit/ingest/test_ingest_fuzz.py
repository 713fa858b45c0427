"""Fuzz every adapter: whatever the bytes, headers and method, and whether or not the signature is
valid, `handle` returns a well-formed Outcome or raises an IngestError: never anything else.

Bodies are raw bytes, arbitrary JSON over the field names the adapters read, and mutations of real
payloads (so the fuzzer reaches deep into the normalizers, not only the JSON parser). Signatures are
computed here, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastavro.validation import validate
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from botstream.core.bots import BotConfig
from botstream.core.secret import Secret
from botstream.ingest.errors import IngestError
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import (
    CHAT_TYPES,
    KINDS,
    UPDATE_FIELDS,
    Accepted,
    HandshakeResponse,
    WebhookRequest,
)

NOW = 1_700_000_000.0
# The Avro contract for Update records, owned by the schemas package: every update must satisfy it.
UPDATE_SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schemas" / "update.avsc"
UPDATE_SCHEMA = fastavro.parse_schema(json.loads(UPDATE_SCHEMA_FILE.read_text())) if UPDATE_SCHEMA_FILE.exists() else None
DISCORD_KEY = Ed25519PrivateKey.generate()
BOTS = {
    "telegram": BotConfig(id="tg", platform="telegram", api_base_url="",
                          credentials={"secret_token": Secret("tg-secret"), "token": Secret("1:a")}),
    "slack": BotConfig(id="sl", platform="slack", api_base_url="",
                       credentials={"signing_secret": Secret("slack-secret"), "bot_token": Secret("xoxb")}),
    "discord": BotConfig(id="dc", platform="discord", api_base_url="", credentials={
        "public_key": DISCORD_KEY.public_key().public_bytes_raw().hex(), "application_id": "app",
        "bot_token": Secret("t")}),
    "whatsapp": BotConfig(id="wa", platform="whatsapp", api_base_url="", credentials={
        "app_secret": Secret("wa-secret"), "verify_token": Secret("vt"), "access_token": Secret("at"),
        "phone_number_id": "555"}),
    "generic": BotConfig(id="gn", platform="generic", api_base_url="", credentials={"secret": Secret("gn-secret")}),
}
HEADER_NAMES = {
    "telegram": ["x-telegram-bot-api-secret-token"],
    "slack": ["x-slack-signature", "x-slack-request-timestamp", "x-slack-retry-num", "x-slack-retry-reason"],
    "discord": ["x-signature-ed25519", "x-signature-timestamp"],
    "whatsapp": ["x-hub-signature-256"],
    "generic": ["x-hub-signature-256", "x-github-delivery", "x-request-id", "x-github-event"],
}


def hub(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_telegram(body: bytes, timestamp: str) -> dict[str, str]:
    return {"x-telegram-bot-api-secret-token": "tg-secret"}


def sign_slack(body: bytes, timestamp: str) -> dict[str, str]:
    mac = hmac.new(b"slack-secret", f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": "v0=" + mac}


def sign_discord(body: bytes, timestamp: str) -> dict[str, str]:
    return {"x-signature-timestamp": timestamp,
            "x-signature-ed25519": DISCORD_KEY.sign(timestamp.encode() + body).hex()}


SIGNERS: dict[str, Callable[[bytes, str], dict[str, str]]] = {
    "telegram": sign_telegram, "slack": sign_slack, "discord": sign_discord,
    "whatsapp": lambda body, _: {"x-hub-signature-256": hub("wa-secret", body)},
    "generic": lambda body, _: {"x-hub-signature-256": hub("gn-secret", body)},
}

TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "telegram": [
        {"update_id": 1, "message": {"message_id": 2, "date": 3, "text": "/start x", "message_thread_id": 4,
                                     "chat": {"id": -100, "type": "supergroup"},
                                     "from": {"id": 5, "is_bot": False, "language_code": "en"},
                                     "reply_to_message": {"message_id": 1},
                                     "photo": [{"file_size": 1}], "document": {"mime_type": "a/b", "file_size": 2}}},
        {"update_id": 1, "callback_query": {"id": "q", "from": {"id": 5}, "data": "d",
                                            "message": {"message_id": 2, "chat": {"id": 5, "type": "private"}}}},
        {"update_id": 1, "message_reaction": {"chat": {"id": 5}, "message_id": 2, "user": {"id": 5},
                                              "new_reaction": [{"type": "emoji", "emoji": "x"}]}},
        {"update_id": 1, "chat_member": {"chat": {"id": 5}, "from": {"id": 5}, "date": 1,
                                         "new_chat_member": {"status": "member"}}},
    ],
    "slack": [
        {"type": "event_callback", "event_id": "Ev1", "team_id": "T1", "event_time": 1,
         "event": {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "text": "hi",
                   "ts": "1.000001", "thread_ts": "1.0", "bot_id": "B1", "subtype": "message_changed",
                   "message": {"text": "x", "user": "U2", "ts": "1.0", "files": [{"mimetype": "image/png", "size": 1}]},
                   "files": [{"mimetype": "image/png", "size": 1}]}},
        {"type": "url_verification", "challenge": "abc"},
    ],
    "discord": [
        {"type": 2, "id": "1180000000000000000", "token": "t", "application_id": "a", "channel_id": "9",
         "guild_id": "8", "locale": "en", "channel": {"id": "9", "type": 11},
         "member": {"user": {"id": "1", "bot": True}}, "user": {"id": "2"}, "message": {"id": "m"},
         "data": {"name": "roll", "custom_id": "c", "options": [
             {"name": "g", "type": 2, "options": [{"name": "s", "type": 1, "options": [
                 {"name": "v", "type": 4, "value": 3}]}]}],
             "resolved": {"attachments": {"a": {"content_type": "image/png", "size": 1}}}}},
        {"type": 1, "id": "1", "application_id": "a", "channel_id": "9", "user": {"id": "2"}},
    ],
    "whatsapp": [
        {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "555"},
            "messages": [{"from": "1", "id": "w1", "timestamp": "2", "type": "text", "text": {"body": "/x"},
                          "context": {"id": "w0"}},
                         {"from": "1", "id": "w2", "timestamp": "2", "type": "interactive",
                          "interactive": {"type": "button_reply", "button_reply": {"id": "b", "title": "B"}}},
                         {"from": "1", "id": "w3", "type": "audio", "audio": {"mime_type": "a", "voice": True}},
                         {"from": "1", "id": "w4", "type": "reaction", "reaction": {"message_id": "w", "emoji": "x"}}],
            "statuses": [{"id": "s", "status": "read", "timestamp": "3", "recipient_id": "1",
                          "errors": [{"code": 1, "title": "t"}]}]}}]}]},
    ],
    "generic": [
        {"id": "a", "chat_id": 1, "text": "t", "user_id": 2, "kind": "command", "chat_type": "group",
         "thread_id": 3, "reply_to": "r", "locale": "en", "ts_ms": 4, "from_bot": True},
    ],
}



def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_of(child) for child in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(child) for child in value))
    return set()


KEYS = sorted(keys_of(TEMPLATES) - set(TEMPLATES) | {"edited_message", "channel_post", "my_chat_member", "caption"})
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=6),
    st.sampled_from(["message", "event_callback", "url_verification", "app_mention", "bot_message", "/cmd", ":",
                     "a:b", "private", "supergroup", "channel", "im", "D1", "text", "interactive", "button_reply",
                     "button", "reaction", "image", "subscribe", "1.5", "123", "messages", ""]),
    st.sampled_from([0, 1, 2, 3, 4, 5, 11, -1001]),
)
JSON_VALUES = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=5)),
    max_leaves=20)


DELETE = object()


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """`template` with up to three of its nodes replaced by arbitrary JSON or removed. Nodes are drawn
    uniformly, so mostly leaves: real payloads with a few surprises keep most of their structure and
    the examples reach deep into the normalizers. (Deep paths come first: Hypothesis over-draws the
    ends of a sample, and a mangled leaf is more useful there than a lost subtree.)"""
    paths = sorted(_node_paths(template), key=len, reverse=True)
    value = template
    for path in draw(st.lists(st.sampled_from(paths), max_size=3)):
        replacement = DELETE if draw(st.sampled_from(["replace", "delete", "replace", "replace"])) == "delete" \
            else draw(JSON_VALUES)
        value = _with_node(value, path, replacement)
    return value


def _node_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    paths = []
    for key, child in items:
        paths.append((*prefix, key))
        paths.extend(_node_paths(child, (*prefix, key)))
    return paths


def _with_node(value: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    """A copy of `value` with the node at `path` replaced (or deleted); unchanged if the path is gone."""
    key, rest = path[0], path[1:]
    if not (isinstance(value, dict) and key in value or isinstance(value, list) and isinstance(key, int) and key < len(value)):
        return value
    copy = dict(value) if isinstance(value, dict) else list(value)
    if rest:
        copy[key] = _with_node(value[key], rest, replacement)
    elif replacement is DELETE:
        del copy[key]
    else:
        copy[key] = replacement
    return copy


MUTATED_TEMPLATES = {platform: st.sampled_from(templates).flatmap(mutated) for platform, templates in TEMPLATES.items()}
BODIES = {platform: st.one_of(st.binary(max_size=256), st.one_of(
    MUTATED_TEMPLATES[platform], st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=6), JSON_VALUES,
).map(lambda value: json.dumps(value).encode())) for platform in TEMPLATES}
HEADER_VALUES = st.one_of(st.text(max_size=40), st.sampled_from(["", "sha256=", "v0=", "1700000000", "ping"]))
CONTENT_TYPES = st.one_of(st.none(), st.text(max_size=20),
                          st.sampled_from(["application/json", "application/json; charset=utf-8"]))
QUERIES = st.dictionaries(st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge"]),
                          st.one_of(st.text(max_size=10), st.sampled_from(["subscribe", "vt"])))


@st.composite
def requests(draw: st.DrawFn, platform: str) -> WebhookRequest:
    body = draw(BODIES[platform])
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES[platform]), HEADER_VALUES))
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers["content-type"] = content_type
    if draw(st.booleans()):  # a valid signature over the fuzzed body, timestamp near now
        timestamp = str(int(NOW) + draw(st.integers(min_value=-400, max_value=400)))
        headers.update(SIGNERS[platform](body, timestamp))
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "post"]))
    query = draw(QUERIES)
    return WebhookRequest(method=method, path=f"/webhooks/{platform}/x", headers=headers, query=query, body=body)


def assert_valid_update(update: dict[str, Any], body: bytes, platform: str) -> None:
    assert tuple(update) == UPDATE_FIELDS
    assert update["platform"] == platform and update["bot_id"] == BOTS[platform].id
    assert update["raw"] == body or (platform == "whatsapp" and update["raw"] == b""
                                     and update["platform_meta"].get("raw_update_id"))  # a batch's later items
    assert isinstance(update["chat_id"], str) and update["chat_id"] and ":" not in update["chat_id"]
    assert isinstance(update["update_id"], str) and update["update_id"]
    assert update["kind"] in KINDS and update["chat_type"] in CHAT_TYPES
    for key in ("user_id", "text", "reply_to", "thread_id", "locale", "traceparent"):
        assert update[key] is None or isinstance(update[key], str)
    assert update["platform_ts_ms"] is None or (type(update["platform_ts_ms"]) is int
                                                and -(1 << 63) <= update["platform_ts_ms"] < 1 << 63)
    assert isinstance(update["from_bot"], bool)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in update["platform_meta"].items())
    for item in update["attachments"]:
        assert set(item) == {"kind", "mime_type", "size"} and isinstance(item["kind"], str)
        assert item["size"] is None or type(item["size"]) is int
    json.dumps({k: v for k, v in update.items() if k != "raw"}).encode("utf-8")  # every string encodable
    if UPDATE_SCHEMA is not None:
        validate(update, UPDATE_SCHEMA, raise_errors=True)


def check_handle(platform: str, request: WebhookRequest) -> None:
    """The property itself; the events show what was reached (pytest --hypothesis-show-statistics)."""
    try:
        outcome = ADAPTERS[platform].handle(BOTS[platform], request, now=NOW, received_at_ms=1,
                                            correlation_id="fuzz")
    except IngestError as error:
        event(error.reason)
        assert error.status in (400, 401, 404, 405, 413, 415)
        assert isinstance(error.reason, str) and error.reason.isidentifier()
        return
    assert isinstance(outcome, HandshakeResponse | Accepted)
    assert isinstance(outcome.status, int) and isinstance(outcome.body, bytes)
    event(f"{type(outcome).__name__}:{len(getattr(outcome, 'updates', []))}")
    if isinstance(outcome, Accepted):
        for update in outcome.updates:
            assert_valid_update(update, request.body, platform)
        if outcome.updates:
            assert outcome.updates[0]["raw"] == request.body  # the raw body is kept once per request


@pytest.mark.parametrize("platform", sorted(BOTS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_request_yields_an_outcome_or_an_ingest_error(platform: str, data: st.DataObject) -> None:
    check_handle(platform, data.draw(requests(platform)))


@pytest.mark.parametrize("platform", sorted(BOTS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_signed_json_payloads_normalize_or_fail_cleanly(platform: str, data: st.DataObject) -> None:
    """Always validly signed and declared JSON, so every example reaches the normalizer."""
    body = json.dumps(data.draw(MUTATED_TEMPLATES[platform])).encode()
    headers = {"content-type": "application/json", **SIGNERS[platform](body, str(int(NOW)))}
    check_handle(platform, WebhookRequest("POST", f"/webhooks/{platform}/x", headers, {}, body))


def test_the_update_avro_schema_is_present_for_the_fuzz_checks() -> None:
    if UPDATE_SCHEMA is None:
        pytest.skip(f"{UPDATE_SCHEMA_FILE} not found: updates are checked without the Avro contract")
    names = [field["name"] for field in json.loads(UPDATE_SCHEMA_FILE.read_text())["fields"]]
    assert tuple(names) == UPDATE_FIELDS
