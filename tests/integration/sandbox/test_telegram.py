"""Telegram over real HTTP: shapes, limits against the server's (manual) clock, chat faults."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from botstream.sandbox import ManualClock, SandboxServer

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def send(
    http: httpx.Client, sandbox: SandboxServer, chat: int, text: str = "hi", seq: int | None = None
) -> httpx.Response:
    headers = {"X-Botstream-Seq": str(seq)} if seq is not None else {}
    return http.post(
        f"{sandbox.base_url}/bot{TOKEN}/sendMessage", json={"chat_id": chat, "text": text}, headers=headers
    )


def test_send_message_and_delivery_log(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox()
    r = send(http, sandbox, 42, "hello", seq=1)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["ok"] is True and body["result"]["text"] == "hello" and body["result"]["chat"]["id"] == 42
    form = http.post(f"{sandbox.base_url}/bot{TOKEN}/sendMessage", data={"chat_id": "42", "text": "form"})
    assert form.json()["result"]["message_id"] == 2
    (first, second) = sandbox.client.deliveries(platform="telegram", bot="123456", chat=42)
    assert (first["text"], first["seq"], first["message_id"]) == ("hello", 1, "1")
    assert second["text"] == "form" and second["seq"] is None
    assert second["arrival_ms"] >= first["arrival_ms"] > 1_600_000_000_000


def test_validation_error_shape(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox()
    r = http.post(f"{sandbox.base_url}/bot{TOKEN}/sendMessage", json={"chat_id": 1, "text": ""})
    assert r.status_code == 400
    assert r.json() == {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
    r = http.post(f"{sandbox.base_url}/bot{TOKEN}/sendMessage", json={"chat_id": 1, "text": "x" * 4097})
    assert r.json()["description"] == "Bad Request: message is too long"


def test_per_chat_limit_over_http(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client, clock: ManualClock
) -> None:
    sandbox = start_sandbox()
    assert [send(http, sandbox, 7).status_code for _ in range(3)] == [200, 200, 200]
    refused = send(http, sandbox, 7)
    assert refused.status_code == 429
    retry_after = refused.json()["parameters"]["retry_after"]
    assert retry_after == 1 and refused.json()["description"] == "Too Many Requests: retry after 1"
    clock.advance(retry_after - 0.01)
    assert send(http, sandbox, 7).status_code == 429
    clock.advance(0.01)
    assert send(http, sandbox, 7).status_code == 200
    assert sandbox.client.stats()["rate_limited"] == {"telegram": {"per_chat": 2}}


def test_group_and_bot_limits_over_http(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client, clock: ManualClock
) -> None:
    sandbox = start_sandbox(limits={"telegram": {"per_chat_burst": 20, "per_chat_per_second": 20.0}})
    assert all(send(http, sandbox, -100500).status_code == 200 for _ in range(20))
    group = send(http, sandbox, -100500)
    assert group.status_code == 429 and group.json()["parameters"]["retry_after"] == 60
    assert all(send(http, sandbox, chat).status_code == 200 for chat in range(1, 11))  # 30 sent this second
    assert send(http, sandbox, 99).status_code == 429
    clock.advance(60)
    assert send(http, sandbox, -100500).status_code == 200
    assert sandbox.client.stats()["rate_limited"]["telegram"] == {"group": 1, "global": 1}


def test_limits_off_accepts_a_flood(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox(limits={"telegram": {"enabled": False}})
    assert {send(http, sandbox, -1).status_code for _ in range(60)} == {200}


def test_forbidden_and_migrated_chats(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(faults={"forbidden_chats": [42], "migrate": {"-77": "-1000077"}})
    blocked = send(http, sandbox, 42)
    assert blocked.status_code == 403
    assert blocked.json() == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }
    moved = send(http, sandbox, -77)
    assert moved.status_code == 400 and moved.json()["parameters"]["migrate_to_chat_id"] == -1000077
    assert send(http, sandbox, -1000077).status_code == 200
    assert sandbox.client.stats()["faults"] == {"forbidden": 1, "migrate": 1}


def test_unknown_token_when_bots_are_listed(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(bots={"telegram": [TOKEN]})
    assert send(http, sandbox, 1).status_code == 200
    r = http.post(f"{sandbox.base_url}/bot1:zzz/sendMessage", json={"chat_id": 1, "text": "x"})
    assert r.status_code == 401 and r.json()["description"] == "Unauthorized"
