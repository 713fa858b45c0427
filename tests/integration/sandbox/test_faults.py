"""Every fault kind as a client sees it over a real connection."""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest

from botstream.sandbox import SandboxConfig, SandboxServer
from botstream.sandbox.faults import decide
from tests.integration.sandbox.support import RecordingSleep

UNLIMITED = SandboxConfig().with_limits_disabled()


def send(http: httpx.Client, sandbox: SandboxServer, chat: int = 1, text: str = "x") -> httpx.Response:
    return http.post(f"{sandbox.base_url}/bot1:tok/sendMessage", json={"chat_id": chat, "text": text})


def test_5xx_ratio_is_deterministic_under_seed(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    config = UNLIMITED.merged({"seed": 1234, "faults": {"ratio_5xx": 0.3}})
    a, b = start_sandbox(config), start_sandbox(config)
    run_a = [send(http, a, i).status_code for i in range(60)]
    run_b = [send(http, b, i).status_code for i in range(60)]
    assert run_a == run_b
    rng = random.Random(1234)
    expected = [decide(config.faults, rng).status or 200 for _ in range(60)]
    assert run_a == expected
    failures = [s for s in run_a if s != 200]
    assert failures and set(failures) <= {500, 502, 503}
    a.client.reset()  # re-seeds: the same sequence again
    assert [send(http, a, i).status_code for i in range(60)] == run_a
    assert a.client.stats()["faults"]["error_5xx"] == len(failures)
    assert len(a.client.deliveries()) == 60 - len(failures)
    body = next(r for r in (send(http, a, 0) for _ in range(40)) if r.status_code >= 500).json()
    assert body["ok"] is False and body["error_code"] >= 500


def test_latency_follows_the_seeded_distribution(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client, sleeps: RecordingSleep
) -> None:
    config = UNLIMITED.merged(
        {"seed": 5, "faults": {"latency": {"kind": "exponential", "mean_ms": 50, "cap_ms": 120}}}
    )
    sandbox = start_sandbox(config)
    assert all(send(http, sandbox, i).status_code == 200 for i in range(30))
    rng = random.Random(5)
    assert sleeps.delays == [decide(config.faults, rng).delay for _ in range(30)]
    assert all(0.0 < d <= 0.12 for d in sleeps.delays) and len(set(sleeps.delays)) > 20
    assert sandbox.client.stats()["faults"] == {"latency": 30}


def test_timeout_holds_until_the_client_gives_up(start_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = start_sandbox(UNLIMITED, faults={"timeout_ratio": 1.0, "timeout_hold_seconds": 30.0})
    with httpx.Client(timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
        send(impatient, sandbox)
    assert sandbox.client.stats()["faults"] == {"timeout": 1}
    assert sandbox.client.deliveries() == []
    sandbox.client.patch_config({"faults": {"timeout_ratio": 0}})
    with httpx.Client(timeout=5.0) as http:
        assert send(http, sandbox).status_code == 200  # the server was not wedged by the held request


def test_timeout_hold_expiry_answers_504(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(UNLIMITED, faults={"timeout_ratio": 1.0, "timeout_hold_seconds": 0.05})
    r = send(http, sandbox)
    assert r.status_code == 504 and r.json()["description"] == "Gateway Timeout"


def test_reset_closes_the_connection_without_a_response(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(UNLIMITED, faults={"reset_ratio": 1.0})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as info:
        send(http, sandbox)
    assert isinstance(info.value, httpx.TransportError)
    sandbox.client.patch_config({"faults": {"reset_ratio": 0}})
    assert send(http, sandbox).status_code == 200  # the client recovers on a new connection
    assert sandbox.client.stats()["faults"] == {"reset": 1}


def test_reset_after_delivery_loses_only_the_response(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(UNLIMITED, faults={"reset_ratio": 1.0, "after_delivery": True})
    with pytest.raises(httpx.TransportError):
        send(http, sandbox, 9, "delivered anyway")
    assert [d["text"] for d in sandbox.client.deliveries(chat=9)] == ["delivered anyway"]


def test_forbidden_chats_on_every_platform(
    start_sandbox: Callable[..., SandboxServer], http: httpx.Client
) -> None:
    sandbox = start_sandbox(faults={"forbidden_chats": ["42", "C42", "15550042"]})
    base = sandbox.base_url
    tg = send(http, sandbox, 42)
    slack = http.post(
        f"{base}/api/chat.postMessage",
        json={"channel": "C42", "text": "x"},
        headers={"Authorization": "Bearer xoxb-1"},
    )
    discord = http.post(
        f"{base}/api/v10/channels/42/messages",
        json={"content": "x"},
        headers={"Authorization": "Bot abc.def.ghi"},
    )
    wa = http.post(
        f"{base}/v21.0/1/messages",
        json={"messaging_product": "whatsapp", "to": "15550042", "text": {"body": "x"}},
        headers={"Authorization": "Bearer t"},
    )
    assert (tg.status_code, slack.json()["error"], discord.json()["code"], wa.json()["error"]["code"]) == (
        403,
        "not_in_channel",
        50001,
        131026,
    )
    assert sandbox.client.stats()["faults"] == {"forbidden": 4}
