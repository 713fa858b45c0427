"""ReplyDeliverer against a mock transport, on a fake clock: what each platform answer leads to."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sinks_factories import make_bot, make_reply

from botstream.core.bots import BotConfig, BotRegistry, Limits
from botstream.core.breaker import CircuitBreaker
from botstream.core.generation import Abandoned, Generation
from botstream.core.retry import RetryPolicy
from botstream.sinks.budget import Budgets
from botstream.sinks.delivery import DeadLetter, Duplicate, Park, ReplyDeliverer, Sent, Skipped
from botstream.sinks.ledger import DeliveryLedger
from botstream.sinks.retry import RetryChain
from botstream.sinks.sender import HttpSender

T0 = 1_000.0


class Rig:
    def __init__(self, answers: list[Any], bot: BotConfig | None = None, **kw: Any) -> None:
        self.now = T0
        self.slept: list[float] = []
        self.requests: list[httpx.Request] = []
        self.answers = list(answers)
        self.bot = bot or make_bot("telegram")
        self.gen = Generation()
        self.ledger = DeliveryLedger({})
        sender = HttpSender(5.0, transport=httpx.MockTransport(self._handle))
        self.deliverer = ReplyDeliverer(
            BotRegistry([self.bot]), sender, Budgets(BotRegistry([self.bot])),
            RetryChain(RetryPolicy(delays_s=(1.0, 5.0, 30.0), max_attempts=4, jitter=0.0)), self.gen,
            clock=lambda: self.now, wall=lambda: self.now, rng=random.Random(1), sleep=self._sleep, **kw)

    async def _sleep(self, seconds: float, generation: int) -> None:
        self.gen.check(generation)
        self.slept.append(round(seconds, 3))
        self.now += seconds

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else ok()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def deliver(self, reply: dict[str, Any], followers: list[dict[str, Any]] | None = None) -> Any:
        return await self.deliverer.deliver(reply, generation=self.gen.current, ledger=self.ledger,
                                            followers=lambda: followers or [])

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def ok(message_id: int = 7) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": {"message_id": message_id}})


def tg_error(status: int, description: str, **params: Any) -> httpx.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if params:
        body["parameters"] = params
    return httpx.Response(status, json=body)


def replies(n: int, chat_id: str = "42", **kw: Any) -> list[dict[str, Any]]:
    return [make_reply(chat_id=chat_id, chat_key=f"telegram:b1:{chat_id}", reply_id=f"r{i}", chat_seq=i,
                       text=f"t{i}", **kw) for i in range(n)]


async def test_delivered_with_the_platform_message_id() -> None:
    rig = Rig([ok(99)])
    verdict = await rig.deliver(make_reply())
    assert isinstance(verdict, Sent) and verdict.message_id == "99" and verdict.http_status == 200
    assert rig.bodies() == [{"chat_id": 42, "text": "hello"}] and rig.slept == []


async def test_a_reply_the_ledger_knows_is_not_sent() -> None:
    rig = Rig([])
    rig.ledger.record("upd-1:0", "delivered", 1, "5")
    verdict = await rig.deliver(make_reply())
    assert isinstance(verdict, Duplicate) and verdict.entry.message_id == "5" and rig.requests == []


async def test_a_reply_for_a_bot_not_in_the_bots_file_is_dead_lettered() -> None:
    verdict = await Rig([]).deliver(make_reply(bot_id="ghost"))
    assert isinstance(verdict, DeadLetter) and verdict.outcome == "failed_permanent" and "ghost" in verdict.reason


async def test_a_429_pauses_only_its_chat_and_the_reply_goes_again_after_the_wait() -> None:
    rig = Rig([tg_error(429, "Too Many Requests: retry after 2", retry_after=2), ok(8)])
    verdict = await rig.deliver(make_reply())
    assert isinstance(verdict, Sent) and len(rig.requests) == 2
    assert rig.slept == [2.0]  # the chat's pause, then the same reply without a retry hop
    limiter = rig.deliverer._budgets.limiter(rig.bot)
    rig.now -= 1.0  # back inside the pause: the chat waits, another chat does not
    assert limiter.reserve("telegram:b1:42", "private", rig.now) > 0
    assert limiter.reserve("telegram:b1:43", "private", rig.now) == 0


async def test_a_platform_that_keeps_refusing_sends_the_reply_to_the_chain_as_an_attempt() -> None:
    rig = Rig([tg_error(429, "Too Many Requests", retry_after=1)] * 4)
    verdict = await rig.deliver(make_reply())
    assert isinstance(verdict, Park) and verdict.counted
    assert len(rig.requests) == 4 and len(rig.slept) == 3 and min(rig.slept) >= 1.0
    assert verdict.record["attempt"] == 1 and verdict.record["not_before_ms"] >= (rig.now + 1) * 1000 - 1
    assert "rate limited" in verdict.record["last_error"]


async def test_5xx_goes_to_retry_level_1_then_to_the_dlq_after_max_attempts() -> None:
    rig = Rig([tg_error(502, "Bad Gateway"), tg_error(502, "Bad Gateway")])
    first = await rig.deliver(make_reply())
    assert isinstance(first, Park) and first.level == 1 and first.record["attempt"] == 1
    assert first.record["not_before_ms"] == round((rig.now + 1.0) * 1000)
    assert first.record["first_error"] == first.record["last_error"] == "http 502: Bad Gateway"
    last = await rig.deliver(make_reply(attempt=3))
    assert isinstance(last, DeadLetter) and last.outcome == "dead_lettered" and last.reply["attempt"] == 4
    assert last.reason.startswith("gave up after 4 attempts")


async def test_a_permanent_refusal_skips_the_chain() -> None:
    rig = Rig([tg_error(403, "Forbidden: bot was blocked by the user")])
    verdict = await rig.deliver(make_reply())
    assert isinstance(verdict, DeadLetter) and verdict.outcome == "failed_permanent"
    assert verdict.http_status == 403 and verdict.error_code == "403" and "blocked" in verdict.reason


async def test_a_connection_error_is_retried_through_the_chain() -> None:
    rig = Rig([httpx.ConnectError("refused")])
    verdict = await rig.deliver(make_reply())
    assert isinstance(verdict, Park) and verdict.record["last_error"] == "transport: ConnectError"


async def test_a_migrated_group_is_resent_to_its_new_id_and_remembered() -> None:
    rig = Rig([tg_error(400, "group chat was upgraded to a supergroup chat", migrate_to_chat_id=-100555), ok(1), ok(2)])
    group = {"chat_id": "-77", "chat_key": "telegram:b1:-77", "chat_type": "group"}
    first = await rig.deliver(make_reply(**group))
    assert isinstance(first, Sent) and first.group[0]["chat_id"] == "-100555"
    assert first.group[0]["platform_meta"]["migrated_from"] == "-77"
    second = await rig.deliver(make_reply(reply_id="r2", chat_seq=8, **group))
    assert isinstance(second, Sent)
    assert [b["chat_id"] for b in rig.bodies()] == [-77, -100555, -100555]  # no failed request the second time


async def test_when_the_chats_budget_is_spent_the_waiting_replies_go_as_one_message() -> None:
    rig = Rig([])
    first, *rest = replies(6)
    for r in (first, rest[0], rest[1]):  # the burst of 3
        assert isinstance(await rig.deliver(r, rest[2:] if r is rest[1] else []), Sent)
    verdict = await rig.deliver(rest[2], rest[3:])  # budget spent: waits, then takes the two behind it
    assert isinstance(verdict, Sent) and [r["reply_id"] for r in verdict.group] == ["r3", "r4", "r5"]
    assert rig.slept and rig.bodies()[-1]["text"] == "t3\n\nt4\n\nt5"
    assert rig.requests[-1].headers["X-Botstream-Seq"] == "5"  # the last reply's seq: order stays checkable


async def test_no_coalescing_when_the_bot_switch_is_off_or_a_follower_was_settled() -> None:
    rig = Rig([], bot=make_bot("telegram", coalesce=False))
    rs = replies(6)
    for r in rs[:3]:
        await rig.deliver(r)
    verdict = await rig.deliver(rs[3], rs[4:])
    assert isinstance(verdict, Sent) and len(verdict.group) == 1
    rig2 = Rig([])
    for r in rs[:3]:
        await rig2.deliver(r)
    rig2.ledger.record("r5", "delivered", 1)
    verdict = await rig2.deliver(rs[3], rs[4:])
    assert isinstance(verdict, Sent) and [r["reply_id"] for r in verdict.group] == ["r3", "r4"]


async def test_an_open_breaker_parks_replies_without_calling_the_api() -> None:
    rig = Rig([tg_error(500, "boom")] * 3,
              breaker_factory=lambda: CircuitBreaker(failure_ratio=0.5, min_calls=2, window_s=60, open_s=10))
    bot = make_bot("telegram", limits=Limits(per_chat_per_second=100, per_chat_burst=100))
    rig.bot = bot
    rig.deliverer._bots = BotRegistry([bot])
    for i in range(2):
        assert isinstance(await rig.deliver(make_reply(reply_id=f"r{i}")), Park)
    calls = len(rig.requests)
    verdict = await rig.deliver(make_reply(reply_id="r9"))
    assert isinstance(verdict, Park) and len(rig.requests) == calls
    assert "circuit open" in verdict.record["last_error"]
    assert verdict.record["not_before_ms"] >= (rig.now + 10) * 1000 - 1


async def test_a_long_budget_wait_parks_the_reply_without_counting_an_attempt() -> None:
    rig = Rig([], long_wait_s=5.0)
    group = {"chat_id": "-5", "chat_key": "telegram:b1:-5", "chat_type": "group"}
    rig.bot = make_bot("telegram", limits=Limits(per_chat_per_second=100, per_chat_burst=100))
    rig.deliverer._bots = BotRegistry([rig.bot])
    sent = 0
    while True:  # 19 per minute (the 20/min group limit less the margin), then a wait of most of a minute
        verdict = await rig.deliver(make_reply(reply_id=f"g{sent}", chat_seq=sent, **group))
        if isinstance(verdict, Park):
            break
        sent += 1
    assert sent == 19 and not verdict.counted and verdict.record["attempt"] == 0
    assert verdict.record["not_before_ms"] >= (rig.now + 50) * 1000


async def test_unsupported_and_invalid_replies() -> None:
    slack = make_bot("slack")
    rig = Rig([], bot=slack)
    typing = make_reply("slack", kind="typing", text=None)
    assert isinstance(await rig.deliver(typing), Skipped)
    edit = make_reply("slack", kind="edit", target_message_id=None)
    verdict = await rig.deliver(edit)
    assert isinstance(verdict, DeadLetter) and verdict.error_code == "InvalidReply" and rig.requests == []


async def test_a_new_generation_abandons_a_reply_waiting_for_budget() -> None:
    rig = Rig([])
    rs = replies(4)
    for r in rs[:3]:
        await rig.deliver(r)

    async def bump_then_sleep(seconds: float, generation: int) -> None:
        rig.gen.bump()
        rig.gen.check(generation)

    rig.deliverer._sleep = bump_then_sleep
    with pytest.raises(Abandoned):
        await rig.deliver(rs[3])
    assert len(rig.requests) == 3


@pytest.mark.parametrize("make", [lambda: make_reply("discord", reply_id="x" * 40)])
async def test_discord_sends_carry_a_nonce_and_learn_the_route_bucket(make: Callable[[], dict[str, Any]]) -> None:
    headers = {"X-RateLimit-Bucket": "abc", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset-After": "2.5"}
    rig = Rig([httpx.Response(200, json={"id": "555"}, headers=headers)], bot=make_bot("discord"))
    reply = make()
    verdict = await rig.deliver(reply)
    assert isinstance(verdict, Sent) and verdict.message_id == "555"
    body = rig.bodies()[0]
    assert len(body["nonce"]) == 25 and body["enforce_nonce"] is True
    limiter = rig.deliverer._budgets.limiter(rig.bot)
    assert limiter.reserve(reply["chat_key"], None, rig.now) == pytest.approx(2.5)  # learned: 0 remaining
