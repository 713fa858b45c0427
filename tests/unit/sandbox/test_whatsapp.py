"""WhatsApp Cloud API text messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.sandbox.driver import Driver

AUTH = {"Authorization": "Bearer EAAG-sandbox"}
PATH = "/v21.0/106540352242922/messages"


def send(d: Driver, to: str = "+1 555 0100", body: str = "hi", path: str = PATH) -> tuple[int, Any]:
    payload = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}
    return d.json(path, payload, headers=AUTH)


def test_success_shape(driver: Driver) -> None:
    code, body = send(driver, "+1 555 0100", "hello")
    assert code == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+1 555 0100", "wa_id": "15550100"}]
    (message,) = body["messages"]
    assert message["id"].startswith("wamid.")
    (d,) = driver.engine.ledger.query(platform="whatsapp")
    assert (d.bot, d.chat, d.text, d.message_id) == ("106540352242922", "15550100", "hello", message["id"])


@pytest.mark.parametrize(
    ("hdrs", "payload", "status", "code"),
    [
        ({}, {"messaging_product": "whatsapp", "to": "1", "text": {"body": "x"}}, 401, 190),
        (AUTH, {"to": "1", "text": {"body": "x"}}, 400, 100),
        (AUTH, {"messaging_product": "whatsapp", "text": {"body": "x"}}, 400, 100),
        (AUTH, {"messaging_product": "whatsapp", "to": "1", "text": {}}, 400, 100),
        (AUTH, {"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {}}, 400, 100),
        (AUTH, {"messaging_product": "whatsapp", "to": "1", "text": {"body": "x" * 4097}}, 400, 100),
    ],
)
def test_errors_use_the_graph_envelope(
    driver: Driver, hdrs: dict[str, str], payload: dict[str, object], status: int, code: int
) -> None:
    got, body = driver.json(PATH, payload, headers=hdrs)
    assert got == status
    err = body["error"]
    assert err["code"] == code and err["type"] == "OAuthException" and err["fbtrace_id"]


def test_bad_path_and_4096_boundary(driver: Driver) -> None:
    assert driver.json("/v21.0/abc/messages", {}, headers=AUTH)[1]["error"]["code"] == 2500
    assert send(driver, body="x" * 4096)[0] == 200


def test_pair_limit_burst_45_then_131056(driver: Driver) -> None:
    for i in range(45):
        assert send(driver, "447700900123")[0] == 200, i
    code, body = send(driver, "447700900123")
    err = body["error"]
    assert code == 400 and err["code"] == 131056 and "error_subcode" not in err
    assert err["error_data"]["messaging_product"] == "whatsapp"
    assert send(driver, "447700900999")[0] == 200  # other recipients unaffected
    driver.advance(6.0)
    assert send(driver, "447700900123")[0] == 200
    assert driver.engine.stats.rate_limited["whatsapp"] == {"pair": 1}


def test_throughput_80_per_second_then_130429(driver: Driver) -> None:
    for i in range(80):
        assert send(driver, str(10_000 + i))[0] == 200
    code, body = send(driver, "99999")
    assert code == 400 and body["error"]["code"] == 130429
    assert send(driver, "99999", path="/v21.0/222/messages")[0] == 200  # per business number
    assert driver.engine.stats.rate_limited["whatsapp"] == {"global": 1}


def test_legacy_versions_carry_error_subcode(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(limits={"whatsapp": {"pair_burst": 1}})
    send(d, "1", path="/v15.0/1/messages")
    assert send(d, "1", path="/v15.0/1/messages")[1]["error"]["error_subcode"] == 2494055


def test_chat_faults(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"forbidden_chats": ["15550100"], "missing_chats": ["15550199"]})
    assert send(d, "+1 555 0100")[1]["error"]["code"] == 131026
    assert send(d, "15550199")[1]["error"]["code"] == 100


def test_server_error_shape(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"ratio_5xx": 1.0, "statuses_5xx": [503]})
    code, body = send(d)
    assert code == 503 and body["error"]["code"] == 2
