"""WhatsApp over real HTTP: shape and both limits (400 + Graph error codes)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from botstream.sandbox import ManualClock, SandboxServer


def send(http: httpx.Client, sandbox: SandboxServer, to: str, number: str = "1065403") -> httpx.Response:
    return http.post(
        f"{sandbox.base_url}/v21.0/{number}/messages",
        json={"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hi"}},
        headers={"Authorization": "Bearer EAAG-test"},
    )


def test_success_shape(start_sandbox: Callable[..., SandboxServer], http: httpx.Client) -> None:
    sandbox = start_sandbox()
    r = send(http, sandbox, "+44 7700 900123")
    assert r.status_code == 200
    body = r.json()
    assert body["contacts"] == [{"input": "+44 7700 900123", "wa_id": "447700900123"}]
    (d,) = sandbox.client.deliveries(platform="whatsapp", bot="1065403", chat="447700900123")
    assert d["message_id"] == body["messages"][0]["id"]


def test_pair_and_throughput_limits(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client, clock: ManualClock
) -> None:
    sandbox = start_sandbox(
        limits={"whatsapp": {"pair_burst": 2, "per_number_burst": 4, "per_number_per_second": 4.0}}
    )
    assert [send(http, sandbox, "100").status_code for _ in range(2)] == [200, 200]
    pair = send(http, sandbox, "100")
    assert pair.status_code == 400 and pair.json()["error"]["code"] == 131056
    assert [send(http, sandbox, to).status_code for to in ("101", "102")] == [200, 200]
    throughput = send(http, sandbox, "103")
    assert throughput.status_code == 400 and throughput.json()["error"]["code"] == 130429
    clock.advance(6.0)
    assert send(http, sandbox, "100").status_code == 200
    assert sandbox.client.stats()["rate_limited"] == {"whatsapp": {"pair": 1, "global": 1}}
