"""Response classification per platform, over answers shaped like the real APIs' ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from botstream.sinks.outcomes import (
    Delivered,
    DiscordBucketUpdate,
    Moved,
    Permanent,
    Retryable,
    Wait,
    classify_transport_error,
    describe_outcome,
)
from botstream.sinks.platforms import discord, generic, slack, telegram, whatsapp
from botstream.sinks.platforms.base import InboundResponse


def resp(status: int, body: Any = None, headers: dict[str, str] | None = None) -> InboundResponse:
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    return InboundResponse(status, headers or {}, raw)


def test_inbound_headers_are_lower_cased() -> None:
    assert resp(200, headers={"Retry-After": "3"}).headers == {"retry-after": "3"}


class TestTelegram:
    def test_sent(self) -> None:
        body = {"ok": True, "result": {"message_id": 1234, "chat": {"id": 42}, "date": 1700000000, "text": "hi"}}
        assert telegram.classify(resp(200, body)) == Delivered("1234")

    def test_chat_action_returns_true(self) -> None:
        assert telegram.classify(resp(200, {"ok": True, "result": True})) == Delivered(None)

    def test_flood_wait(self) -> None:
        body = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 17",
                "parameters": {"retry_after": 17}}
        assert telegram.classify(resp(429, body)) == Wait(17.0, "chat")

    def test_group_upgraded_to_supergroup(self) -> None:
        body = {"ok": False, "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": -1001987654321}}
        assert telegram.classify(resp(400, body)) == Moved("-1001987654321")

    def test_bot_blocked(self) -> None:
        body = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        assert telegram.classify(resp(403, body)) == Permanent("Forbidden: bot was blocked by the user", 403, "403")

    def test_chat_not_found(self) -> None:
        body = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        assert telegram.classify(resp(400, body)) == Permanent("Bad Request: chat not found", 400, "400")

    def test_edit_already_applied_counts_as_delivered(self) -> None:
        body = {"ok": False, "error_code": 400, "description": "Bad Request: message is not modified: specified "
                "new message content and reply markup are exactly the same as a current content"}
        assert telegram.classify(resp(400, body)) == Delivered(None)

    def test_gateway_error_with_html(self) -> None:
        outcome = telegram.classify(resp(502, b"<html><body>502 Bad Gateway</body></html>"))
        assert outcome == Retryable("HTTP 502", 502)


class TestSlack:
    def test_posted(self) -> None:
        body = {"ok": True, "channel": "C2", "ts": "1700000000.000200", "message": {"text": "hello"}}
        assert slack.classify(resp(200, body)) == Delivered("1700000000.000200")

    def test_rate_limited_uses_retry_after_header(self) -> None:
        outcome = slack.classify(resp(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
        assert outcome == Wait(30.0, "chat")

    @pytest.mark.parametrize("error", ["channel_not_found", "invalid_auth", "not_in_channel", "is_archived"])
    def test_ok_false_on_200_is_permanent(self, error: str) -> None:
        assert slack.classify(resp(200, {"ok": False, "error": error})) == Permanent(error, 200, error)

    def test_internal_error_on_200_is_retryable(self) -> None:
        assert slack.classify(resp(200, {"ok": False, "error": "internal_error"})) == Retryable("internal_error", 200)

    def test_server_error(self) -> None:
        assert slack.classify(resp(503, b"")) == Retryable("HTTP 503", 503)

    def test_200_without_slack_json_may_have_posted(self) -> None:
        assert slack.classify(resp(200, b"<html>captive portal</html>")) == Retryable(
            "HTTP 200 without a Slack answer", 200, ambiguous=True)


class TestDiscord:
    def test_created(self) -> None:
        body = {"id": "1187000000000000001", "channel_id": "1100", "content": "hello", "nonce": "r-1"}
        assert discord.classify(resp(200, body)) == Delivered("1187000000000000001")

    def test_typing_204(self) -> None:
        assert discord.classify(resp(204)) == Delivered(None)

    def test_route_429_pauses_the_bucket(self) -> None:
        body = {"message": "You are being rate limited.", "retry_after": 1.337, "global": False}
        headers = {"Retry-After": "2", "X-RateLimit-Scope": "user", "X-RateLimit-Bucket": "abcd1234"}
        assert discord.classify(resp(429, body, headers)) == Wait(1.337, "route:abcd1234")

    def test_global_429(self) -> None:
        body = {"message": "You are being rate limited.", "retry_after": 0.5, "global": True}
        headers = {"Retry-After": "1", "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
        assert discord.classify(resp(429, body, headers)) == Wait(0.5, "global")

    def test_shared_429_is_route_scoped(self) -> None:
        body = {"message": "You are being rate limited.", "retry_after": 3.0, "global": False}
        headers = {"X-RateLimit-Scope": "shared", "X-RateLimit-Bucket": "feed"}
        assert discord.classify(resp(429, body, headers)) == Wait(3.0, "route:feed")

    def test_cloudflare_429_without_json_stops_the_bot(self) -> None:
        outcome = discord.classify(resp(429, b"<html>error 1015</html>", {"Retry-After": "120"}))
        assert outcome == Wait(120.0, "global")

    def test_unknown_channel(self) -> None:
        outcome = discord.classify(resp(404, {"message": "Unknown Channel", "code": 10003}))
        assert outcome == Permanent("Unknown Channel", 404, "10003")

    def test_missing_permissions(self) -> None:
        outcome = discord.classify(resp(403, {"message": "Missing Permissions", "code": 50013}))
        assert outcome == Permanent("Missing Permissions", 403, "50013")

    def test_server_error(self) -> None:
        assert discord.classify(resp(500, {"message": "500: Internal Server Error", "code": 0})) == Retryable(
            "500: Internal Server Error", 500)

    def test_rate_limit_headers(self) -> None:
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "1700000001.5",
                   "X-RateLimit-Reset-After": "4.998", "X-RateLimit-Bucket": "abcd1234"}
        assert discord.rate_limit_headers(resp(200, {"id": "1"}, headers)) == DiscordBucketUpdate(
            "abcd1234", 5, 4, 4.998)

    @pytest.mark.parametrize("headers", [
        {},
        {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1"},
        {"X-RateLimit-Limit": "x", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1",
         "X-RateLimit-Bucket": "b"},
    ])
    def test_no_bucket_update_without_a_full_set(self, headers: dict[str, str]) -> None:
        assert discord.rate_limit_headers(resp(200, {"id": "1"}, headers)) is None


def wa_error(code: int, message: str, details: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": "AbCdEf123"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


class TestWhatsApp:
    def test_accepted(self) -> None:
        body = {"messaging_product": "whatsapp", "contacts": [{"input": "4915112345678", "wa_id": "4915112345678"}],
                "messages": [{"id": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjQ="}]}
        assert whatsapp.classify(resp(200, body)) == Delivered("wamid.HBgLNDkxNTExMjM0NTY3OBUCABEYEjQ=")

    @pytest.mark.parametrize(("code", "status", "expected"), [
        (130429, 400, Wait(2.0, "bot")),
        (131056, 400, Wait(6.0, "chat")),
        (131048, 400, Wait(900.0, "bot")),
        (80007, 400, Wait(60.0, "bot")),
        (4, 400, Wait(60.0, "bot")),
    ])
    def test_rate_limit_codes(self, code: int, status: int, expected: Wait) -> None:
        assert whatsapp.classify(resp(status, wa_error(code, f"(#{code}) Rate limit hit"))) == expected

    def test_outside_the_24h_window_is_permanent(self) -> None:
        body = wa_error(131047, "Re-engagement message", "Message failed to send because more than 24 hours "
                        "have passed since the customer last replied to this number.")
        outcome = whatsapp.classify(resp(400, body))
        assert isinstance(outcome, Permanent)
        assert (outcome.http_status, outcome.error_code) == (400, "131047")
        assert outcome.reason.startswith("Re-engagement message: Message failed")

    def test_service_unavailable_code_is_retryable(self) -> None:
        assert whatsapp.classify(resp(400, wa_error(131016, "Service unavailable"))) == Retryable(
            "Service unavailable", 400)

    def test_server_error(self) -> None:
        assert isinstance(whatsapp.classify(resp(500, wa_error(1, "An unknown error occurred"))), Retryable)


class TestGeneric:
    def test_delivered_with_id(self) -> None:
        assert generic.classify(resp(202, {"message_id": 9})) == Delivered("9")

    def test_429(self) -> None:
        assert generic.classify(resp(429, b"slow down", {"Retry-After": "4"})) == Wait(4.0, "bot")

    def test_retry_after_date_is_read_against_the_arrival_time(self) -> None:
        date = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
        arrived = InboundResponse(429, date, b"", received_at=1445412480.0 - 12)
        assert generic.classify(arrived) == Wait(12.0, "bot")

    def test_retry_after_date_without_an_arrival_time_falls_back_to_default(self) -> None:
        outcome = generic.classify(resp(429, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
        assert outcome == Wait(generic.DEFAULT_RETRY_AFTER_S, "bot")

    @pytest.mark.parametrize(("status", "kind"), [(500, Retryable), (408, Retryable), (400, Permanent),
                                                  (410, Permanent)])
    def test_statuses(self, status: int, kind: type) -> None:
        assert isinstance(generic.classify(resp(status, b"nope")), kind)


class TestTransportErrors:
    @pytest.mark.parametrize("name", ["ConnectError", "ConnectTimeout", "PoolTimeout"])
    def test_not_sent(self, name: str) -> None:
        assert classify_transport_error(name) == Retryable(f"transport: {name}", None, ambiguous=False)

    @pytest.mark.parametrize("name", ["ReadTimeout", "RemoteProtocolError", "ReadError", "SomethingNew"])
    def test_maybe_sent(self, name: str) -> None:
        assert classify_transport_error(name) == Retryable(f"transport: {name}", None, ambiguous=True)

    @pytest.mark.parametrize("name", ["UnsupportedProtocol", "LocalProtocolError", "InvalidURL"])
    def test_our_fault(self, name: str) -> None:
        assert isinstance(classify_transport_error(name), Permanent)


def test_describe_outcome() -> None:
    assert describe_outcome(Wait(1.5, "chat")) == "rate limited (chat), retry after 1.5s"
    assert describe_outcome(Permanent("Unknown Channel", 404, "10003")) == "http 404 [10003]: Unknown Channel"
    assert describe_outcome(Retryable("transport: ReadTimeout")) == "transport: ReadTimeout"
    assert describe_outcome(Moved("-100")) == "chat moved to -100"


def test_wait_refuses_unknown_scope() -> None:
    with pytest.raises(ValueError):
        Wait(1.0, "planet")
