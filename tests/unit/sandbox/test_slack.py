"""Slack chat.postMessage emulation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from botstream.sandbox.identity import short_id
from tests.unit.sandbox.driver import Driver

TOKEN = "xoxb-1111-2222-abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POST = "/api/chat.postMessage"


def post(d: Driver, channel: str = "C1", text: str | None = "hi", **extra: object) -> tuple[int, Any]:
    payload: dict[str, object] = {"channel": channel, **extra}
    if text is not None:
        payload["text"] = text
    return d.json(POST, payload, headers=AUTH)


def test_success_shape_and_increasing_ts(driver: Driver) -> None:
    code, body = post(driver, "C1", "hello")
    assert code == 200 and body["ok"] is True and body["channel"] == "C1"
    ts = body["ts"]
    assert isinstance(ts, str) and ts.count(".") == 1 and len(ts.split(".")[1]) == 6
    assert body["message"]["text"] == "hello" and body["message"]["ts"] == ts
    second = post(driver, "C1")[1]["ts"]
    assert float(second) > float(ts)
    assert driver.engine.ledger.query(platform="slack")[0].bot == short_id(TOKEN)


@pytest.mark.parametrize(
    ("headers", "payload", "error"),
    [
        ({}, {"channel": "C1", "text": "x"}, "not_authed"),
        ({"Authorization": "Bearer nope"}, {"channel": "C1", "text": "x"}, "invalid_auth"),
        (AUTH, {"text": "x"}, "channel_not_found"),
        (AUTH, {"channel": "C1"}, "no_text"),
        (AUTH, {"channel": "C1", "text": ""}, "no_text"),
        (AUTH, {"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
        (AUTH, {"channel": "C1", "blocks": "{not json"}, "invalid_blocks"),
    ],
)
def test_errors_are_ok_false_on_http_200(
    driver: Driver, headers: dict[str, str], payload: dict[str, object], error: str
) -> None:
    assert driver.json(POST, payload, headers=headers) == (200, {"ok": False, "error": error})


def test_blocks_only_and_form_token(driver: Driver) -> None:
    assert post(driver, text=None, blocks=[{"type": "section"}])[0] == 200
    out = driver.post(POST, form={"token": TOKEN, "channel": "C2", "text": "form"})
    assert out.reply.json()["ok"] is True
    assert post(driver, text="x" * 40_000)[1]["ok"] is True


def test_unknown_method_is_404(driver: Driver) -> None:
    assert driver.json("/api/chat.postMessagee", {}, headers=AUTH)[0] == 404


def test_known_tokens(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(bots={"slack": ["xoxb-other"]})
    assert post(d) == (200, {"ok": False, "error": "invalid_auth"})


def test_per_channel_limit_429_with_retry_after(driver: Driver) -> None:
    for _ in range(3):
        assert post(driver)[1]["ok"] is True
    out = driver.post(POST, {"channel": "C1", "text": "x"}, headers=AUTH)
    assert out.reply.status == 429
    assert (b"retry-after", b"1") in out.reply.headers
    assert out.reply.json() == {"ok": False, "error": "ratelimited"}
    assert post(driver, "C2")[1]["ok"] is True
    driver.advance(1.0)
    assert post(driver)[1]["ok"] is True
    assert driver.engine.stats.rate_limited["slack"] == {"per_chat": 1}


def test_chat_faults(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"forbidden_chats": ["C9"], "missing_chats": ["C0"], "migrate": {"C1": "C2"}})
    assert post(d, "C9") == (200, {"ok": False, "error": "not_in_channel"})
    assert post(d, "C0") == (200, {"ok": False, "error": "channel_not_found"})
    assert post(d, "C1")[1]["ok"] is True  # migrate is Telegram-only
