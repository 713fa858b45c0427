"""Telegram Bot API emulation: validation, shapes, limits, chat faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.sandbox.driver import Driver

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SEND = f"/bot{TOKEN}/sendMessage"


def send(d: Driver, chat: int | str, text: str = "hi", **extra: object) -> tuple[int, Any]:
    return d.json(SEND, {"chat_id": chat, "text": text, **extra})


def test_send_message_success_shape(driver: Driver) -> None:
    status, body = send(driver, 42, "hello")
    assert status == 200
    assert body["ok"] is True
    result = body["result"]
    assert result["message_id"] == 1
    assert result["chat"] == {"id": 42, "first_name": "Sandbox User", "type": "private"}
    assert result["from"]["id"] == 123456 and result["from"]["is_bot"] is True
    assert result["text"] == "hello" and isinstance(result["date"], int)
    assert send(driver, 42)[1]["result"]["message_id"] == 2
    assert send(driver, 43)[1]["result"]["message_id"] == 1  # ids are per chat


@pytest.mark.parametrize(
    ("chat", "kind"),
    [
        (-1001234567890, "supergroup"),
        (-1001234, "group"),
        (-77, "group"),
        ("@news", "channel"),
        ("42", "private"),
    ],
)
def test_chat_types(driver: Driver, chat: int | str, kind: str) -> None:
    assert send(driver, chat)[1]["result"]["chat"]["type"] == kind


def test_form_encoded_query_string_and_case_insensitive_method(driver: Driver) -> None:
    out = driver.post(f"/bot{TOKEN}/sendmessage", form={"chat_id": "-5", "text": "form"})
    assert out.reply.status == 200 and out.reply.json()["result"]["chat"]["id"] == -5
    status, body = driver.json(f"/bot{TOKEN}/sendMessage", None, query="chat_id=9&text=q")
    assert status == 200 and body["result"]["text"] == "q"


@pytest.mark.parametrize(
    ("path", "payload", "status", "description"),
    [
        ("/botnot-a-token/sendMessage", {"chat_id": 1, "text": "x"}, 404, "Not Found"),
        (f"/bot{TOKEN}/sendPhotoo", {"chat_id": 1, "text": "x"}, 404, "Not Found"),
        (SEND, {"text": "x"}, 400, "Bad Request: chat_id is empty"),
        (SEND, {"chat_id": "abc", "text": "x"}, 400, "Bad Request: chat not found"),
        (SEND, {"chat_id": 1}, 400, "Bad Request: message text is empty"),
        (SEND, {"chat_id": 1, "text": ""}, 400, "Bad Request: message text is empty"),
        (SEND, {"chat_id": 1, "text": "x" * 4097}, 400, "Bad Request: message is too long"),
    ],
)
def test_validation_errors(
    driver: Driver, path: str, payload: dict[str, object], status: int, description: str
) -> None:
    code, body = driver.json(path, payload)
    assert code == status
    assert body == {"ok": False, "error_code": status, "description": description}


def test_text_of_exactly_4096_is_accepted(driver: Driver) -> None:
    assert send(driver, 1, "é" * 4096)[0] == 200


def test_invalid_json_body(driver: Driver) -> None:
    status, body = driver.json(SEND, raw=b"{nope")
    assert status == 400 and body["ok"] is False


def test_known_bots_only_when_configured(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(bots={"telegram": [TOKEN]})
    assert send(d, 1)[0] == 200
    code, body = d.json("/bot999:other/sendMessage", {"chat_id": 1, "text": "x"})
    assert (code, body["description"]) == (401, "Unauthorized")


def test_edit_message_text(driver: Driver) -> None:
    edit = f"/bot{TOKEN}/editMessageText"
    mid = send(driver, 42, "v1")[1]["result"]["message_id"]
    code, body = driver.json(edit, {"chat_id": 42, "message_id": 99, "text": "v2"})
    assert (code, body["description"]) == (400, "Bad Request: message to edit not found")
    code, body = driver.json(edit, {"chat_id": 42, "message_id": mid, "text": "v1"})
    assert code == 400 and body["description"].startswith("Bad Request: message is not modified")
    driver.advance(1)
    code, body = driver.json(edit, {"chat_id": 42, "message_id": mid, "text": "v2"})
    assert code == 200 and body["result"]["text"] == "v2" and "edit_date" in body["result"]
    methods = [(d.method, d.text, d.message_id) for d in driver.engine.ledger.query(chat="42")]
    assert methods == [("sendMessage", "v1", "1"), ("editMessageText", "v2", "1")]


def test_send_chat_action_is_not_a_delivery_nor_limited(driver: Driver) -> None:
    action = f"/bot{TOKEN}/sendChatAction"
    for _ in range(10):
        assert driver.json(action, {"chat_id": 42, "action": "typing"}) == (200, {"ok": True, "result": True})
    assert driver.json(action, {"chat_id": 42, "action": "dancing"})[0] == 400
    assert len(driver.engine.ledger) == 0


def test_per_chat_burst_then_429_then_allowed_after_retry_after(driver: Driver) -> None:
    for _ in range(3):
        assert send(driver, 42)[0] == 200
    code, body = send(driver, 42)
    assert code == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert send(driver, 43)[0] == 200  # other chats unaffected
    driver.advance(1.0)
    assert send(driver, 42)[0] == 200
    assert driver.engine.stats.rate_limited["telegram"] == {"per_chat": 1}


def test_group_limit_20_per_minute(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(limits={"telegram": {"per_chat_per_second": 100.0, "per_chat_burst": 100}})
    for i in range(20):
        assert send(d, -100777)[0] == 200, i
        d.advance(0.5)
    code, body = send(d, -100777)
    assert code == 429 and body["parameters"]["retry_after"] == 50  # first one leaves the window at t=60
    assert send(d, 777)[0] == 200  # private chats have no group limit
    d.advance(50.0)
    assert send(d, -100777)[0] == 200
    assert d.engine.stats.rate_limited["telegram"]["group"] == 1


def test_per_bot_30_per_second_across_chats(driver: Driver) -> None:
    for chat in range(30):
        assert send(driver, chat + 1)[0] == 200
    code, body = send(driver, 1000)
    assert code == 429 and body["parameters"]["retry_after"] == 1
    assert driver.engine.stats.rate_limited["telegram"] == {"global": 1}
    other_bot = driver.json("/bot777:x/sendMessage", {"chat_id": 1, "text": "x"})
    assert other_bot[0] == 200


def test_paid_broadcast_lifts_the_per_bot_budget(driver: Driver) -> None:
    for chat in range(200):
        assert send(driver, chat + 1, allow_paid_broadcast=True)[0] == 200


def test_chat_faults(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(
        faults={"forbidden_chats": ["42", "-9"], "missing_chats": ["13"], "migrate": {"-5": "-1005"}}
    )
    assert send(d, 42)[1]["description"] == "Forbidden: bot was blocked by the user"
    assert send(d, -9) == (
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked from the group chat"},
    )
    assert send(d, 13)[1]["description"] == "Bad Request: chat not found"
    code, body = send(d, -5)
    assert code == 400 and body["parameters"] == {"migrate_to_chat_id": -1005}
    assert send(d, -1005)[0] == 200
    assert dict(d.engine.stats.faults) == {"forbidden": 2, "missing": 1, "migrate": 1}


def test_server_error_shape(make_driver: Callable[..., Driver]) -> None:
    d = make_driver(faults={"ratio_5xx": 1.0, "statuses_5xx": [502]})
    assert send(d, 1) == (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
