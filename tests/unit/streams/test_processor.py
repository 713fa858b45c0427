"""The update path without a broker: dicts as tables, a list as the output."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from botstream.core.bots import BotConfig, BotRegistry
from botstream.core.secret import Secret
from botstream.streams.conversation import fold
from botstream.streams.handlers import Bot, Context, load_bot
from botstream.streams.processor import DEDUPE, DEDUPE_INDEX, UpdateProcessor, reply_id
from tests.pipeline import make_update
from tests.unit.streams.harness import ProcessorHarness


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def registry() -> BotRegistry:
    return BotRegistry([
        BotConfig(id="echo", platform="telegram", credentials={"token": Secret("1:x"), "secret_token": Secret("s")},
                  api_base_url="", handler="botstream.streams.examples.echo"),
        BotConfig(id="faq", platform="telegram", credentials={"token": Secret("2:x"), "secret_token": Secret("s")},
                  api_base_url="", handler="botstream.streams.examples.faq"),
    ])


def build(handlers: dict[str, Bot] | None = None, timeout: float = 1.0) -> tuple[ProcessorHarness, list[Any], Clock]:
    out: list[tuple[str, str, dict[str, Any]]] = []

    def emit(stream: str, key: str, record: Any, headers: list[tuple[str, bytes]]) -> None:
        out.append((stream, key, record))

    clock = Clock()
    handlers = handlers or {"echo": load_bot("botstream.streams.examples.echo"), "faq": load_bot("botstream.streams.examples.faq")}
    proc = UpdateProcessor(registry(), handlers, emit=emit, dedupe_window_s=3600, handler_timeout_s=timeout,
                           clock=clock)
    return ProcessorHarness(proc), out, clock


def replies(out: list[Any]) -> list[dict[str, Any]]:
    return [r for s, _, r in out if s == "replies"]


async def test_echo_exact_text_and_deterministic_ids() -> None:
    proc, out, _ = build()
    u = make_update("7", "hi there")
    await proc.process(u, 0, 10)
    [r] = replies(out)
    assert r["text"] == "echo: hi there" and r["chat_key"] == "telegram:echo:7"
    assert r["reply_id"] == reply_id(u, 0) and r["chat_seq"] == 10 * 1000


async def test_redelivery_dropped_but_own_reprocessing_is_not() -> None:
    proc, out, clock = build()
    u = make_update("7", "a")
    assert (await proc.process(u, 0, 10)).verdict == "handled"
    assert (await proc.process(dict(u), 0, 11)).verdict == "duplicate"  # same id, other record: redelivery
    again = await proc.process(dict(u), 0, 10)  # same record after a crash: handle again, same ids
    assert again.verdict == "handled"
    assert [r["reply_id"] for r in replies(out)] == [reply_id(u, 0)] * 2
    clock.t += 3601  # past the window: a new update as far as we know
    assert (await proc.process(dict(u), 0, 12)).verdict == "handled"


async def test_from_bot_is_dropped_before_handlers() -> None:
    proc, out, _ = build()
    assert (await proc.process(make_update("7", "echo: x", from_bot=True), 0, 1)).verdict == "from_bot"
    assert out == []


async def test_failing_and_slow_handlers_become_recorded_failures_with_fallback() -> None:
    bot = Bot(fallback_text="sorry")

    @bot.command("boom")
    async def boom(ctx: Context) -> None:
        raise RuntimeError("kaboom")

    @bot.command("slow")
    async def slow(ctx: Context) -> None:
        await asyncio.sleep(5)

    proc, out, _ = build({"echo": bot}, timeout=0.05)
    o1 = await proc.process(make_update("7", "/boom", kind="command"), 0, 1)
    o2 = await proc.process(make_update("7", "/slow", kind="command"), 0, 2)
    assert o1.verdict == o2.verdict == "failed"
    failures = [r["payload"] for s, _, r in out if s == "messages" and r["payload"]["type"] == "HandlerFailed"]
    assert "kaboom" in failures[0]["reason"] and "timeout" in failures[1]["reason"]
    assert [r["text"] for r in replies(out)] == ["sorry", "sorry"]


async def test_state_changes_and_handoff_then_release_fold_like_the_table() -> None:
    proc, out, _ = build()
    await proc.process(make_update("9", "/start", bot_id="faq", kind="command"), 0, 1)
    await proc.process(make_update("9", "/human", bot_id="faq", kind="command"), 0, 2)
    o = await proc.process(make_update("9", "still there?", bot_id="faq"), 0, 3)
    assert o.verdict == "handoff"
    assert [s for s, _, _ in out].count("handoff") == 1
    live = proc.conversation("telegram:faq:9")
    assert live["handoff"] is True and live["bot_state"] == {"started": True} and live["turns"] == 3
    rebuilt = fold(r for s, _, r in out if s == "messages")
    assert rebuilt["telegram:faq:9"] == live
    proc.record_external({"event_id": "x", "chat_key": "telegram:faq:9", "at_ms": 1,
                          "payload": {"type": "HandoffReleased", "by": "ops"}}, proc.view(4))
    assert (await proc.process(make_update("9", "price?", bot_id="faq"), 0, 4)).verdict == "handled"
    assert replies(out)[-1]["text"] == "botstream is free and open source."


async def test_expired_keys_are_deleted_oldest_first() -> None:
    proc, _, clock = build()
    for i in range(5):
        await proc.process(make_update("1", f"m{i}"), 0, i)
        clock.t += 1000
    clock.t += 3600 - 2500  # the first three are now older than the window
    proc.checkpoint(5)  # the sweep reads the index from the database
    assert proc.sweep_expired(proc.table(DEDUPE_INDEX), proc.view(5)) == 3
    proc.checkpoint(6)
    assert len(proc.table(DEDUPE)) == 2 and len(proc.table(DEDUPE_INDEX)) == 2


@pytest.mark.parametrize("text, expected", [("/start@MyBot x", "start"), ("hello", None), ("/", None)])
def test_command_names(text: str, expected: str | None) -> None:
    from botstream.streams.handlers import command_name
    assert command_name(text) == expected
