"""Discord channel messages and interaction follow-ups."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from botstream.sandbox.engine import Outcome
from tests.unit.sandbox.driver import Driver

BOT_ID = "1234567890123456789"
TOKEN = base64.urlsafe_b64encode(BOT_ID.encode()).decode().rstrip("=") + ".GhIjKl.secretpart"
AUTH = {"Authorization": f"Bot {TOKEN}"}


def create(d: Driver, channel: str = "111", **payload: object) -> Outcome:
    return d.post(f"/api/v10/channels/{channel}/messages", {"content": "hi", **payload}, headers=AUTH)


def headers(out: Outcome) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in out.reply.headers}


def test_message_object_shape(driver: Driver) -> None:
    out = create(driver, content="hello")
    assert out.reply.status == 200
    msg = out.reply.json()
    assert msg["content"] == "hello" and msg["channel_id"] == "111"
    assert isinstance(msg["id"], str) and msg["id"].isdigit()
    assert msg["author"]["id"] == BOT_ID and msg["author"]["bot"] is True
    assert msg["timestamp"].endswith("+00:00") and msg["edited_timestamp"] is None
    assert int(create(driver).reply.json()["id"]) > int(msg["id"])
    assert driver.engine.ledger.query()[0].bot == BOT_ID


def test_rate_limit_headers_on_every_response(driver: Driver) -> None:
    h = headers(create(driver))
    assert h["x-ratelimit-limit"] == "5" and h["x-ratelimit-remaining"] == "4"
    assert h["x-ratelimit-reset-after"] == "5.000"
    assert float(h["x-ratelimit-reset"]) == pytest.approx(1_700_000_000.0 + 5.0)
    driver.advance(1.5)
    h2 = headers(create(driver))
    assert h2["x-ratelimit-remaining"] == "3" and h2["x-ratelimit-reset-after"] == "3.500"
    assert h2["x-ratelimit-bucket"] == h["x-ratelimit-bucket"]
    assert headers(create(driver, "222"))["x-ratelimit-bucket"] != h["x-ratelimit-bucket"]


def test_channel_bucket_5_per_5s(driver: Driver) -> None:
    for _ in range(5):
        assert create(driver).reply.status == 200
    driver.advance(2.0)
    out = create(driver)
    assert out.reply.status == 429
    h = headers(out)
    assert h["retry-after"] == "3" and h["x-ratelimit-scope"] == "user" and h["x-ratelimit-remaining"] == "0"
    assert out.reply.json() == {
        "message": "You are being rate limited.",
        "retry_after": 3.0,
        "global": False,
        "code": 0,
    }
    driver.advance(3.0)
    assert create(driver).reply.status == 200
    assert driver.engine.stats.rate_limited["discord"] == {"per_chat": 1}


def test_global_50_per_second(driver: Driver) -> None:
    for ch in range(50):
        assert create(driver, str(1000 + ch)).reply.status == 200
    out = create(driver, "9999")
    assert out.reply.status == 429 and out.reply.json()["global"] is True
    assert headers(out)["x-ratelimit-scope"] == "global" and headers(out)["x-ratelimit-global"] == "true"
    follow = driver.post("/api/v10/webhooks/42/tok", {"content": "x"})
    assert follow.reply.status == 200  # interactions are exempt from the global limit
    driver.advance(1.0)
    assert create(driver, "9999").reply.status == 200


def test_followup_needs_no_auth_and_is_filed_under_the_token(driver: Driver) -> None:
    out = driver.post("/api/v10/webhooks/555/interaction-token", {"content": "done", "flags": 64})
    msg = out.reply.json()
    assert out.reply.status == 200 and msg["webhook_id"] == "555" and msg["flags"] == 64
    (d,) = driver.engine.ledger.query(platform="discord")
    assert (d.bot, d.chat, d.method) == ("555", "interaction-token", "followup")


@pytest.mark.parametrize(
    ("path", "hdrs", "payload", "status", "code"),
    [
        ("/api/v10/channels/111/messages", {}, {"content": "x"}, 401, 0),
        ("/api/v10/channels/111/messages", {"Authorization": "Bearer x"}, {"content": "x"}, 401, 0),
        ("/api/v10/channels/abc/messages", AUTH, {"content": "x"}, 400, 50035),
        ("/api/v10/channels/111/messages", AUTH, {"content": "x" * 2001}, 400, 50035),
        ("/api/v10/channels/111/messages", AUTH, {}, 400, 50006),
        ("/api/v10/channels/111/messages", AUTH, {"content": "x", "nonce": "n" * 26}, 400, 50035),
        ("/api/v10/webhooks/abc/tok", {}, {"content": "x"}, 404, 10015),
        ("/api/v10/channels/111/pins", AUTH, {"content": "x"}, 404, 0),
    ],
)
def test_errors(
    driver: Driver, path: str, hdrs: dict[str, str], payload: dict[str, object], status: int, code: int
) -> None:
    got_status, body = driver.json(path, payload, headers=hdrs)
    assert (got_status, body["code"]) == (status, code)
    assert isinstance(body["message"], str)


def test_unauthorized_body(driver: Driver) -> None:
    assert driver.json("/api/v10/channels/1/messages", {"content": "x"}) == (
        401,
        {"message": "401: Unauthorized", "code": 0},
    )


def test_max_length_error_names_the_field(driver: Driver) -> None:
    body = create(driver, content="x" * 2001).reply.json()
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert create(driver, content="x" * 2000).reply.status == 200


def test_enforced_nonce_returns_the_same_message(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(nonce_window_seconds=60.0, limits={"discord": {"enabled": False}})
    first = create(d, nonce="abc", enforce_nonce=True).reply.json()
    again = create(d, nonce="abc", enforce_nonce=True).reply.json()
    assert again["id"] == first["id"] and again["nonce"] == "abc"
    assert create(d, nonce="abc").reply.json()["id"] != first["id"]  # not enforced: a new message
    assert d.engine.stats.nonce_hits == 1
    assert len(d.engine.ledger.query(platform="discord")) == 2
    d.advance(61.0)
    assert create(d, nonce="abc", enforce_nonce=True).reply.json()["id"] != first["id"]


def test_chat_faults(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"forbidden_chats": ["7"], "missing_chats": ["8", "gone"]})
    assert d.json("/api/v10/channels/7/messages", {"content": "x"}, headers=AUTH) == (
        403,
        {"message": "Missing Access", "code": 50001},
    )
    assert d.json("/api/v10/channels/8/messages", {"content": "x"}, headers=AUTH) == (
        404,
        {"message": "Unknown Channel", "code": 10003},
    )
    assert d.json("/api/v10/webhooks/1/gone", {"content": "x"})[1]["code"] == 10015


def test_server_error_shape(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"ratio_5xx": 1.0, "statuses_5xx": [500]})
    assert d.json("/api/v10/channels/1/messages", {"content": "x"}, headers=AUTH) == (
        500,
        {"message": "500: Internal Server Error", "code": 0},
    )
