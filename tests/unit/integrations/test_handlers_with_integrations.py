"""Handlers reach integrations through their context; every failure still ends in a reply or a record."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from botstream.core.bots import BotConfig, BotRegistry
from botstream.core.secret import Secret
from botstream.streams.examples.faq import ASSISTANT_DOWN
from botstream.streams.handlers import Bot, Context, load_bot
from botstream.streams.integrations import IntegrationPool
from botstream.streams.processor import UpdateProcessor
from tests.pipeline import make_update
from tests.unit.integrations.support import config
from tests.unit.streams.harness import ProcessorHarness

SEEN: dict[str, Any] = {}


def registry() -> BotRegistry:
    creds = {"token": Secret("1:x"), "secret_token": Secret("s")}
    llm = {"llm": config(retries=1, backoff_s=0.001)}
    return BotRegistry([
        BotConfig(id="faq", platform="telegram", credentials=creds, api_base_url="", integrations=llm),
        BotConfig(id="raw", platform="telegram", credentials=creds, api_base_url="", integrations=llm),
        BotConfig(id="plain", platform="telegram", credentials=creds, api_base_url=""),
    ])


def raw_bot() -> Bot:
    """Calls the integration without catching anything: failures are the processor's to record."""
    bot = Bot(fallback_text="raw fallback")

    @bot.default
    async def ask(ctx: Context) -> None:
        SEEN.update(deadline=ctx.deadline, correlation_id=ctx.correlation_id, names=sorted(ctx.integrations))
        resp = await ctx.integrations["llm"].post("/v1/answer", json={"question": ctx.text})
        ctx.reply(resp.json()["answer"])

    return bot


def build(upstream: Any, timeout: float = 1.0) -> tuple[ProcessorHarness, list[tuple[str, dict[str, Any]]], IntegrationPool]:
    out: list[tuple[str, dict[str, Any]]] = []

    def emit(stream: str, key: str, record: Any, headers: list[tuple[str, bytes]]) -> None:
        out.append((stream, record))

    bots = registry()
    pool = IntegrationPool(bots.values(), transport=httpx.MockTransport(upstream))
    handlers = {"faq": load_bot("botstream.streams.examples.faq"), "raw": raw_bot(), "plain": load_bot("botstream.streams.examples.faq")}
    proc = UpdateProcessor(bots, handlers, emit=emit, dedupe_window_s=3600, handler_timeout_s=timeout,
                           integrations=pool)
    return ProcessorHarness(proc), out, pool


def texts(out: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [r["text"] for s, r in out if s == "replies"]


async def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"answer": f"A: {json.loads(request.content)['question']}"})


async def test_ask_answers_through_the_llm_integration() -> None:
    proc, out, _ = build(answer)
    outcome = await proc.process(make_update("7", "/ask what is botstream?", bot_id="faq", kind="command"), 0, 1)
    assert outcome.verdict == "handled" and texts(out) == ["A: what is botstream?"]


async def test_ask_falls_back_to_its_own_text_when_the_upstream_is_down() -> None:
    async def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    proc, out, _ = build(down)
    outcome = await proc.process(make_update("7", "/ask anyone there?", bot_id="faq", kind="command"), 0, 1)
    assert outcome.verdict == "handled" and texts(out) == [ASSISTANT_DOWN]


async def test_ask_without_a_declared_integration_says_so() -> None:
    proc, out, _ = build(answer)
    await proc.process(make_update("7", "/ask hello", bot_id="plain", kind="command"), 0, 1)
    assert texts(out) == [ASSISTANT_DOWN]


async def test_context_carries_the_deadline_and_correlation_id() -> None:
    proc, out, _ = build(answer, timeout=2.0)
    before = time.monotonic()
    update = make_update("7", "hi", bot_id="raw")
    await proc.process(update, 0, 1)
    assert before + 2.0 <= SEEN["deadline"] <= time.monotonic() + 2.0
    assert SEEN["correlation_id"] == update["correlation_id"] and SEEN["names"] == ["llm"]
    assert texts(out) == ["A: hi"]


async def test_an_uncaught_integration_error_becomes_a_recorded_failure_and_the_fallback() -> None:
    async def rejected(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "bad"})

    proc, out, _ = build(rejected)
    outcome = await proc.process(make_update("7", "hi", bot_id="raw"), 0, 1)
    assert outcome.verdict == "failed" and texts(out) == ["raw fallback"]
    assert any("IntegrationRejected" in str(r) for s, r in out if s == "messages")


async def test_a_hanging_upstream_gives_up_before_the_handler_timeout_and_frees_its_slot() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    proc, out, pool = build(hang, timeout=0.3)
    started = time.monotonic()
    outcome = await proc.process(make_update("7", "hi", bot_id="raw"), 0, 1)
    took = time.monotonic() - started
    print(f"\nhanging upstream: handler failed after {took * 1000:.0f} ms (handler timeout 300 ms)")
    reasons = [str(r["payload"]) for s, r in out if s == "messages" and "HandlerFailed" in str(r["payload"])]
    assert outcome.verdict == "failed" and texts(out) == ["raw fallback"]
    assert len(reasons) == 1 and "IntegrationTimeout" in reasons[0]  # the integration's own, not wait_for's
    assert pool.get("raw", "llm").slots_held == 0
