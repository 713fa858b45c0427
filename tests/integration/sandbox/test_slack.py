"""Slack over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from botstream.sandbox import ManualClock, SandboxServer, bot_identity

TOKEN = "xoxb-1111-2222-abcdef"


def post(
    http: httpx.Client, sandbox: SandboxServer, channel: str = "C1", token: str = TOKEN
) -> httpx.Response:
    return http.post(
        f"{sandbox.base_url}/api/chat.postMessage",
        json={"channel": channel, "text": "hi"},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_success_and_errors_on_200(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox()
    ok = post(http, sandbox)
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["channel"] == "C1"
    bad = post(http, sandbox, token="garbage")
    assert bad.status_code == 200 and bad.json() == {"ok": False, "error": "invalid_auth"}
    (d,) = sandbox.client.deliveries(platform="slack")
    assert d["bot"] == bot_identity("slack", TOKEN) and d["message_id"] == ok.json()["ts"]


def test_rate_limit_429_retry_after_then_allowed(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client, clock: ManualClock
) -> None:
    sandbox = start_sandbox()
    assert [post(http, sandbox).json()["ok"] for _ in range(3)] == [True, True, True]
    refused = post(http, sandbox)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json() == {"ok": False, "error": "ratelimited"}
    clock.advance(int(refused.headers["retry-after"]))
    assert post(http, sandbox).status_code == 200
    assert sandbox.client.stats()["rate_limited"] == {"slack": {"per_chat": 1}}
