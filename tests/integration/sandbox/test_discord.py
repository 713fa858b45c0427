"""Discord over real HTTP: bucket headers, 429 scopes, nonce dedupe, follow-ups."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx

from botstream.sandbox import ManualClock, SandboxServer

BOT_ID = "998877665544332211"
TOKEN = base64.urlsafe_b64encode(BOT_ID.encode()).decode().rstrip("=") + ".Gabcde.secret"


def create(
    http: httpx.Client, sandbox: SandboxServer, channel: str = "111", **payload: object
) -> httpx.Response:
    return http.post(
        f"{sandbox.base_url}/api/v10/channels/{channel}/messages",
        json={"content": "hi", **payload},
        headers={"Authorization": f"Bot {TOKEN}"},
    )


def test_bucket_headers_and_channel_429(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client, clock: ManualClock
) -> None:
    sandbox = start_sandbox()
    remaining = []
    for _ in range(5):
        r = create(http, sandbox)
        assert r.status_code == 200 and r.json()["author"]["id"] == BOT_ID
        remaining.append(r.headers["x-ratelimit-remaining"])
        bucket = r.headers["x-ratelimit-bucket"]
    assert remaining == ["4", "3", "2", "1", "0"]
    clock.advance(1.25)
    refused = create(http, sandbox)
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-scope"] == "user" and refused.headers["x-ratelimit-bucket"] == bucket
    assert refused.headers["retry-after"] == "4" and refused.headers["x-ratelimit-reset-after"] == "3.750"
    body = refused.json()
    assert body == {"message": "You are being rate limited.", "retry_after": 3.75, "global": False, "code": 0}
    clock.advance(body["retry_after"])
    again = create(http, sandbox)
    assert again.status_code == 200 and again.headers["x-ratelimit-remaining"] == "4"


def test_global_limit_scope(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox(limits={"discord": {"global_limit": 3}})
    assert [create(http, sandbox, str(c)).status_code for c in (1, 2, 3, 4)] == [200, 200, 200, 429]
    refused = create(http, sandbox, "5")
    assert refused.headers["x-ratelimit-scope"] == "global" and refused.json()["global"] is True
    assert sandbox.client.stats()["rate_limited"] == {"discord": {"global": 2}}


def test_nonce_dedupe_and_followup(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox()
    first = create(http, sandbox, nonce="n-1", enforce_nonce=True).json()
    again = create(http, sandbox, nonce="n-1", enforce_nonce=True).json()
    assert again["id"] == first["id"]
    follow = http.post(f"{sandbox.base_url}/api/v10/webhooks/{BOT_ID}/itoken", json={"content": "later"})
    assert follow.status_code == 200 and follow.json()["webhook_id"] == BOT_ID
    deliveries = sandbox.client.deliveries(platform="discord", bot=BOT_ID)
    assert [(d["chat"], d["text"]) for d in deliveries] == [("111", "hi"), ("itoken", "later")]
    assert sandbox.client.stats()["nonce_hits"] == 1


def test_auth_and_unknown_channel(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox(faults={"missing_chats": ["404"]})
    r = http.post(f"{sandbox.base_url}/api/v10/channels/1/messages", json={"content": "x"})
    assert r.status_code == 401 and r.json() == {"message": "401: Unauthorized", "code": 0}
    gone = create(http, sandbox, "404")
    assert gone.status_code == 404 and gone.json() == {"message": "Unknown Channel", "code": 10003}
