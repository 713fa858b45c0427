"""Generic (GitHub-style) webhooks: X-Hub-Signature-256 and the documented body contract."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from botstream.core.bots import BotConfig, parse_bots
from botstream.core.errors import ConfigError
from botstream.core.secret import Secret
from botstream.ingest.errors import BadRequest, Unauthorized, UnsupportedMediaType
from botstream.ingest.platforms import ADAPTERS
from botstream.ingest.platforms.base import Accepted, Outcome, WebhookRequest
from botstream.ingest.platforms.generic import (
    signed_timestamp_scheme,
    timestamped_signature,
    verify_generic_signature,
)
from botstream.ingest.platforms.hub_signature import hub_signature

ADAPTER = ADAPTERS["generic"]
BOT = BotConfig(id="hooks", platform="generic", api_base_url="", credentials={"secret": Secret("s3cret-A")})
OTHER_BOT = BotConfig(id="other", platform="generic", api_base_url="", credentials={"secret": Secret("s3cret-B")})
GITHUB_VECTOR = ("It's a Secret to Everybody", b"Hello, World!",
                 "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(payload: Any, *, secret: str = "s3cret-A", headers: dict[str, str] | None = None,
         content_type: str = "application/json", signature: str | None = None) -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    all_headers = {"content-type": content_type,
                   "x-hub-signature-256": signature if signature is not None else sign(secret, body), **(headers or {})}
    return WebhookRequest(method="POST", path="/webhooks/generic/hooks", headers=all_headers, query={}, body=body)


def handle(request: WebhookRequest, bot_config: BotConfig = BOT) -> Outcome:
    return ADAPTER.handle(bot_config, request, now=0.0, received_at_ms=42, correlation_id="c-5")


def only_update(request: WebhookRequest) -> dict[str, Any]:
    outcome = handle(request)
    assert isinstance(outcome, Accepted) and (outcome.status, outcome.body) == (200, b"")
    assert len(outcome.updates) == 1
    return outcome.updates[0]


def test_github_test_vector() -> None:
    secret, body, expected = GITHUB_VECTOR
    assert hub_signature(secret, body) == expected
    verify_generic_signature(secret, body, expected)
    with pytest.raises(Unauthorized):
        verify_generic_signature(secret, body + b" ", expected)


def test_minimal_event_becomes_the_exact_update() -> None:
    request = post({"id": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "chat_id": 12345, "text": "ping", "user_id": 7},
                   headers={"x-github-delivery": "not-the-dedupe-id"})
    assert only_update(request) == {
        "platform": "generic", "bot_id": "hooks", "chat_id": "12345", "chat_type": "unknown", "user_id": "7",
        "update_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "kind": "message", "text": "ping",
        "attachments": [], "reply_to": None, "thread_id": None, "locale": None, "platform_ts_ms": None,
        "received_at_ms": 42, "correlation_id": "c-5", "from_bot": False, "platform_meta": {},
        "traceparent": None, "raw": request.body,
    }


def test_optional_fields_of_the_contract() -> None:
    update = only_update(post({"id": 99, "chat_id": "room-1", "kind": "command", "chat_type": "group",
                               "thread_id": 5, "reply_to": "m-4", "locale": "fr", "ts_ms": 1_700_000_000_000,
                               "from_bot": True, "text": "/go"}))
    assert (update["update_id"], update["kind"], update["chat_type"]) == ("99", "command", "group")
    assert (update["thread_id"], update["reply_to"], update["locale"]) == ("5", "m-4", "fr")
    assert (update["platform_ts_ms"], update["from_bot"]) == (1_700_000_000_000, True)


def test_unknown_kind_and_chat_type_fall_back() -> None:
    update = only_update(post({"id": "a", "chat_id": "c", "kind": "explode", "chat_type": "cosmic",
                               "ts_ms": 10 ** 30}))
    assert (update["kind"], update["chat_type"], update["platform_ts_ms"]) == ("message", "unknown", None)


def test_dedupe_id_is_the_signed_body_id_never_an_unsigned_header() -> None:
    """A captured request replayed with new X-GitHub-Delivery / X-Request-Id values is the same update."""
    request = post({"id": "evt-1", "chat_id": "c", "text": "deploy"})
    ids = set()
    for extra in ({}, {"x-github-delivery": "gh-1"}, {"x-github-delivery": "gh-2", "x-request-id": "rq-9"},
                  {"x-request-id": "proxy-added"}):
        replay = WebhookRequest(request.method, request.path, {**request.headers, **extra}, {}, request.body)
        ids.add(only_update(replay)["update_id"])
    assert ids == {"evt-1"}


def test_no_dedupe_id_or_no_chat_id_is_400() -> None:
    for headers in ({}, {"x-github-delivery": "gh", "x-request-id": "rq"}):
        with pytest.raises(BadRequest) as caught:
            handle(post({"chat_id": "c"}, headers=headers))
        assert caught.value.reason == "missing_update_id"
    for body in ({"id": "a"}, {"id": "a", "chat_id": True}, {"id": "a", "chat_id": ""}):
        with pytest.raises(BadRequest) as caught:
            handle(post(body))
        assert caught.value.reason == "missing_chat_id"
    with pytest.raises(BadRequest) as caught:
        handle(post({"id": "a", "chat_id": "a:b"}))
    assert caught.value.reason == "invalid_chat_id"


def test_github_ping_is_accepted_empty() -> None:
    outcome = handle(post({"zen": "Keep it simple.", "hook_id": 1}, headers={"x-github-event": "ping"}))
    assert isinstance(outcome, Accepted) and outcome.updates == []


def test_an_unsigned_ping_header_cannot_silence_a_message() -> None:
    update = only_update(post({"id": "m-1", "chat_id": "c", "text": "hi"}, headers={"x-github-event": "ping"}))
    assert update["update_id"] == "m-1"


@pytest.mark.parametrize(("signature", "reason"), [
    ("", "signature_missing"), ("sha256=nothex", "signature_mismatch"), ("md5=00", "signature_malformed"),
])
def test_bad_signatures_are_401(signature: str, reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        handle(post({"id": "a", "chat_id": "c"}, signature=signature))
    assert caught.value.reason == reason


def test_signed_for_bot_a_checked_as_bot_b_is_401() -> None:
    with pytest.raises(Unauthorized):
        handle(post({"id": "a", "chat_id": "c"}), OTHER_BOT)


def test_malformed_json_and_content_type() -> None:
    with pytest.raises(BadRequest) as caught:
        handle(post(b"NaN"))
    assert caught.value.reason == "malformed_json"
    with pytest.raises(UnsupportedMediaType):
        handle(post({"id": "a", "chat_id": "c"}, content_type="application/jsonp"))


# -- the optional signed-timestamp scheme --------------------------------------------------------------

TS_BOT = BotConfig(id="stamped", platform="generic", api_base_url="", credentials={
    "secret": Secret("s3cret-A"), "timestamp_header": "X-Botstream-Timestamp", "timestamp_tolerance_s": "60"})
NOW = 1_700_000_000.0


def stamped(payload: Any, *, timestamp: str | None = str(int(NOW)), secret: str = "s3cret-A",
            signed_timestamp: str | None = None, headers: dict[str, str] | None = None) -> WebhookRequest:
    body = json.dumps(payload).encode()
    message = (signed_timestamp if signed_timestamp is not None else timestamp or "").encode() + b"." + body
    all_headers = {"content-type": "application/json",
                   "x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest(),
                   **({"x-botstream-timestamp": timestamp} if timestamp is not None else {}), **(headers or {})}
    return WebhookRequest(method="POST", path="/webhooks/generic/stamped", headers=all_headers, query={}, body=body)


def handle_stamped(request: WebhookRequest, now: float = NOW) -> Outcome:
    return ADAPTER.handle(TS_BOT, request, now=now, received_at_ms=42, correlation_id="c-5")


def test_signed_timestamp_scheme_signs_timestamp_dot_body() -> None:
    assert timestamped_signature("k", "1700000000", b"{}") == hub_signature("k", b"1700000000.{}")
    outcome = handle_stamped(stamped({"id": "e1", "chat_id": "c"}))
    assert isinstance(outcome, Accepted) and outcome.updates[0]["update_id"] == "e1"
    edge = handle_stamped(stamped({"id": "e1", "chat_id": "c"}), now=NOW + 60)
    assert isinstance(edge, Accepted)


@pytest.mark.parametrize(("request_", "now", "reason"), [
    (stamped({"id": "e", "chat_id": "c"}, timestamp=None, signed_timestamp=str(int(NOW))), NOW, "timestamp_missing"),
    (stamped({"id": "e", "chat_id": "c"}, timestamp="soon"), NOW, "timestamp_malformed"),
    (stamped({"id": "e", "chat_id": "c"}), NOW + 61, "timestamp_stale"),
    (stamped({"id": "e", "chat_id": "c"}), NOW - 61, "timestamp_stale"),
    (stamped({"id": "e", "chat_id": "c"}, signed_timestamp=str(int(NOW) - 1)), NOW, "signature_mismatch"),
    (stamped({"id": "e", "chat_id": "c"}, secret="other"), NOW, "signature_mismatch"),
])
def test_signed_timestamp_refusals(request_: WebhookRequest, now: float, reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        handle_stamped(request_, now=now)
    assert caught.value.reason == reason


def test_a_plain_body_signature_is_refused_when_the_bot_signs_timestamps() -> None:
    body = json.dumps({"id": "e", "chat_id": "c"}).encode()
    request = WebhookRequest("POST", "/webhooks/generic/stamped", {
        "content-type": "application/json", "x-botstream-timestamp": str(int(NOW)),
        "x-hub-signature-256": hub_signature("s3cret-A", body)}, {}, body)
    with pytest.raises(Unauthorized):
        handle_stamped(request)


def test_replay_with_new_unsigned_headers_in_the_window_is_one_update_id() -> None:
    request = stamped({"id": "e7", "chat_id": "c"})
    ids = {only_update_of(handle_stamped(WebhookRequest(request.method, request.path,
                                                         {**request.headers, **extra}, {}, request.body)))
           for extra in ({}, {"x-github-delivery": "x"}, {"x-request-id": "y"})}
    assert ids == {"e7"}


def only_update_of(outcome: Outcome) -> str:
    assert isinstance(outcome, Accepted) and len(outcome.updates) == 1
    return str(outcome.updates[0]["update_id"])


def test_bots_file_keys_of_the_scheme() -> None:
    base = '[[bots]]\nid = "g"\nplatform = "generic"\nsecret = "s"\n'
    bot = parse_bots(base + 'timestamp_header = "X-Ts"\ntimestamp_tolerance_s = 30\n')["g"]
    assert signed_timestamp_scheme(bot) == ("X-Ts", 30)
    assert signed_timestamp_scheme(parse_bots(base + 'timestamp_header = "X-Ts"\n')["g"]) == ("X-Ts", 300)
    assert signed_timestamp_scheme(parse_bots(base)["g"]) is None
    for extra, key in (('timestamp_header = "bad header"\n', "timestamp_header"),
                       ('timestamp_tolerance_s = 30\n', "timestamp_tolerance_s"),
                       ('timestamp_header = "X-Ts"\ntimestamp_tolerance_s = 0\n', "timestamp_tolerance_s")):
        with pytest.raises(ConfigError, match=key):
            parse_bots(base + extra)
