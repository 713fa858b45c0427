"""The sandbox's Slack response_url: minted for test payloads, answered "ok", five uses in 30 minutes,
recorded as deliveries of the channel it belongs to, never rate limited."""

from __future__ import annotations

from urllib.parse import urlsplit

from botstream.sandbox.config import SandboxConfig
from botstream.sandbox.platforms.slack import response_url
from tests.unit.sandbox.driver import Driver

BASE = "http://127.0.0.1:8090"


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_minted_url_is_under_the_base_and_names_team_and_channel() -> None:
    url = response_url(BASE, "T1", "C9")
    assert url.startswith(f"{BASE}/commands/T1/C9/") and len(url.rsplit("/", 1)[1]) == 24
    assert response_url(BASE, "T1", "C9", kind="actions").startswith(f"{BASE}/actions/T1/C9/")
    assert response_url(BASE, "T1", "C9") != url


def test_an_ephemeral_answer_is_ok_and_recorded_under_its_channel(driver: Driver) -> None:
    path = path_of(response_url(BASE, "T1", "C9"))
    out = driver.post(path, {"text": "only you", "response_type": "ephemeral"}, headers={"X-Botstream-Seq": "4"})
    assert (out.reply.status, out.reply.body) == (200, b"ok")
    assert dict(out.reply.headers)[b"content-type"].startswith(b"text/plain")
    [delivery] = driver.engine.ledger.query(platform="slack")
    assert (delivery.chat, delivery.method, delivery.text) == ("C9", "response_url:ephemeral", "only you")
    out = driver.post(path, {"text": "for all", "response_type": "in_channel"})
    assert out.reply.status == 200
    assert driver.engine.ledger.query(platform="slack")[1].method == "response_url:in_channel"


def test_five_uses_then_used_url_and_expiry() -> None:
    d = Driver(SandboxConfig())
    path = path_of(response_url(BASE, "T1", "C9"))
    assert [d.post(path, {"text": str(n)}).reply.status for n in range(5)] == [200] * 5
    out = d.post(path, {"text": "six"})
    assert (out.reply.status, out.reply.body) == (404, b"used_url")
    late = path_of(response_url(BASE, "T1", "C9"))
    assert d.post(late, {"text": "first"}).reply.status == 200
    d.advance(30 * 60 + 1)
    out = d.post(late, {"text": "too late"})
    assert (out.reply.status, out.reply.body) == (404, b"expired_url")


def test_no_rate_limit_on_response_urls() -> None:
    d = Driver(SandboxConfig())  # Slack's per-channel limit on: 1/s, burst 3
    statuses = [d.post(path_of(response_url(BASE, "T1", "C9")), {"text": "x"}).reply.status for _ in range(10)]
    assert statuses == [200] * 10


def test_bad_bodies(driver: Driver) -> None:
    path = path_of(response_url(BASE, "T1", "C9"))
    assert (driver.post(path, {"response_type": "ephemeral"}).reply.body) == b"no_text"
    assert driver.post(path, {"text": "x", "response_type": "loud"}).reply.status == 400
    assert driver.post(path, raw=b"{not json", headers={"content-type": "application/json"}).reply.status == 400
    assert driver.post("/commands/T1/C9", {"text": "x"}).reply.status == 404
    assert driver.engine.ledger.query(platform="slack") == []
