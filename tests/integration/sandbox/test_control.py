"""The /_sandbox/ control API over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from botstream.sandbox import SandboxConfig, SandboxServer


def send(http: httpx.Client, base: str, chat: int, seq: int, bot: str = "1") -> int:
    return http.post(
        f"{base}/bot{bot}:tok/sendMessage",
        json={"chat_id": chat, "text": f"m{seq}"},
        headers={"X-Botstream-Seq": str(seq)},
    ).status_code


def test_healthz_and_unknown_routes(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    base = start_sandbox().base_url
    assert http.get(f"{base}/_sandbox/healthz").json() == {"ok": True}
    assert http.get(f"{base}/_sandbox/nope").status_code == 404
    assert http.post(f"{base}/_sandbox/stats").status_code == 405
    assert http.get(f"{base}/elsewhere").status_code == 404


def test_deliveries_filters_and_order_violations(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(SandboxConfig().with_limits_disabled())
    base = sandbox.base_url
    for chat, seq in ((10, 1), (10, 2), (20, 1), (10, 3), (10, 2), (20, 1)):
        assert send(http, base, chat, seq) == 200
    assert send(http, base, 10, 1, bot="2") == 200
    chat10 = sandbox.client.deliveries(platform="telegram", bot="1", chat=10)
    assert [(d["seq"], d["text"]) for d in chat10] == [(1, "m1"), (2, "m2"), (3, "m3"), (2, "m2")]
    assert [d["index"] for d in sandbox.client.deliveries()] == list(range(7))
    assert sandbox.client.deliveries(bot="2")[0]["chat"] == "10"
    assert sandbox.client.deliveries(platform="slack") == []
    stats = sandbox.client.stats()
    assert stats["order_violations"] == 1 and stats["duplicate_seqs"] == 1
    assert stats["violations"] == [
        {"platform": "telegram", "bot": "1", "chat": "10", "seq": 2, "after_seq": 3, "index": 4}
    ]
    assert stats["accepted"] == {"telegram": 7} and stats["requests"] == {"telegram": 7}


def test_reset_clears_log_stats_and_limits(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox()
    base = sandbox.base_url
    assert [send(http, base, 5, i) for i in range(4)] == [200, 200, 200, 429]
    sandbox.client.reset()
    assert sandbox.client.deliveries() == []
    stats = sandbox.client.stats()
    assert stats["rate_limited_total"] == 0 and stats["order_violations"] == 0 and stats["accepted"] == {}
    assert send(http, base, 5, 0) == 200  # limiter state is gone too


def test_config_get_put_merge_and_validation(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox()
    base = sandbox.base_url
    http.headers["Authorization"] = f"Bearer {sandbox.control_token}"
    assert http.get(f"{base}/_sandbox/config").json()["limits"]["telegram"]["enabled"] is True
    updated = http.put(
        f"{base}/_sandbox/config",
        json={"limits": {"telegram": {"enabled": False}}, "faults": {"forbidden_chats": ["3"]}},
    ).json()
    assert updated["limits"]["telegram"]["enabled"] is False and updated["limits"]["slack"]["enabled"] is True
    assert {send(http, base, 5, i) for i in range(10)} == {200}
    assert send(http, base, 3, 0) == 403
    bad = http.put(f"{base}/_sandbox/config", json={"faults": {"ratio_5xx": 7}})
    assert bad.status_code == 400 and "ratio_5xx" in bad.json()["error"]
    assert http.put(f"{base}/_sandbox/config", content=b"{oops").status_code == 400
    assert http.get(f"{base}/_sandbox/config").json()["faults"]["ratio_5xx"] == 0.0


def test_steering_needs_the_token_and_reading_does_not(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox()
    base = sandbox.base_url
    for method, route in (("GET", "config"), ("PUT", "config"), ("PATCH", "config"), ("POST", "reset"),
                          ("POST", "upstream/reset")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Sandbox-Token": "wrong"}):
            r = http.request(method, f"{base}/_sandbox/{route}", json={"faults": {"ratio_5xx": 1.0}}, headers=headers)
            assert (r.status_code, r.json()["error"]) == (401, "unauthorized"), (method, route, headers)
    assert sandbox.client.config()["faults"]["ratio_5xx"] == 0.0  # nothing was switched
    for route in ("healthz", "deliveries", "stats", "upstream/stats"):
        assert http.get(f"{base}/_sandbox/{route}").status_code == 200, route
    ok = http.post(f"{base}/_sandbox/reset", headers={"X-Sandbox-Token": sandbox.control_token})
    assert ok.status_code == 200


def test_config_never_returns_the_bots_tokens(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(bots={"telegram": ["123:SECRET-telegram"], "slack": ["xoxb-SECRET-slack"]},
                            upstream={"authorization": "Bearer SECRET-llm"})
    auth = {"Authorization": f"Bearer {sandbox.control_token}"}
    shown = http.get(f"{sandbox.base_url}/_sandbox/config", headers=auth)
    assert "SECRET" not in shown.text
    assert shown.json()["bots"] == {"telegram": ["**********"], "slack": ["**********"]}
    assert shown.json()["upstream"]["authorization"] == "**********"
    patched = http.put(f"{sandbox.base_url}/_sandbox/config", headers=auth, json={"seed": 7})
    assert "SECRET" not in patched.text and patched.json()["seed"] == 7
    # the tokens still work, and a read-modify-write cannot replace them with the mask
    assert http.post(f"{sandbox.base_url}/bot123:SECRET-telegram/sendMessage", json={"chat_id": 1, "text": "x"}
                     ).status_code == 200
    back = http.put(f"{sandbox.base_url}/_sandbox/config", headers=auth, json={"bots": shown.json()["bots"]})
    assert back.status_code == 400 and "masked" in back.json()["error"]
    assert http.post(f"{sandbox.base_url}/bot123:SECRET-telegram/sendMessage", json={"chat_id": 1, "text": "y"}
                     ).status_code == 200
