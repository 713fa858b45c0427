"""Scheduled jobs: when they run (every / cron, UTC) and which chats they reach (the chats index)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from botstream.core.bots import BotConfig, BotRegistry
from botstream.core.secret import Secret
from botstream.streams.app import derive_local_rows
from botstream.streams.handlers import Bot, JobContext, load_bot
from botstream.streams.jobs import Schedule, chats_in
from botstream.streams.processor import CHATS, UpdateProcessor
from tests.pipeline import make_update
from tests.unit.streams.harness import ProcessorHarness


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("spec, now, expected_s", [
    ("0 9 * * *", "2026-12-02T08:59:30", 30.0),           # today 09:00 UTC
    ("0 9 * * *", "2026-12-02T09:00:01", 24 * 3600 - 1),  # just missed: tomorrow
    ("*/15 * * * *", "2026-12-02T10:07:00", 8 * 60),
    ("0 0 * * 1", "2026-12-02T00:00:00", 5 * 24 * 3600),  # a Wednesday -> next Monday
])
def test_cron_schedules_run_at_the_times_they_name_in_utc(spec: str, now: str, expected_s: float) -> None:
    assert Schedule(cron=spec).delay(at(now)) == pytest.approx(expected_s)


def test_interval_jobs_wait_their_interval_and_bad_cron_is_refused_at_declaration() -> None:
    assert Schedule(every_s=60).delay(at("2026-12-02T08:00:00")) == 60
    bot = Bot()
    with pytest.raises(ValueError, match="not a cron expression"):
        bot.cron("61 * * * *")
    with pytest.raises(ValueError):
        Schedule().delay(0)


def harness() -> ProcessorHarness:
    creds = {"token": Secret("1:x"), "secret_token": Secret("s")}
    bots = BotRegistry([BotConfig(id="faq", platform="telegram", credentials=creds, api_base_url=""),
                        BotConfig(id="echo", platform="telegram", credentials=creds, api_base_url="")])
    handlers = {"faq": load_bot("botstream.streams.examples.faq"), "echo": load_bot("botstream.streams.examples.echo")}
    return ProcessorHarness(UpdateProcessor(bots, handlers, emit=lambda *a: None, dedupe_window_s=3600,
                                            handler_timeout_s=1.0))


async def test_job_chats_are_the_bots_chats_from_the_index_and_a_predicate_filters_them() -> None:
    h = harness()
    updates = [make_update("f1", "/digest on", bot_id="faq", kind="command"), make_update("f2", "hello", bot_id="faq"),
               make_update("e1", "hi", bot_id="echo"), make_update("f1", "again", bot_id="faq")]
    for offset, u in enumerate(updates):
        await h.process(u, 0, offset)
    h.checkpoint(len(updates))
    assert [k for k, _ in h.table(CHATS)] == [b"echo\x00telegram:echo:e1", b"faq\x00telegram:faq:f1",
                                              b"faq\x00telegram:faq:f2"]  # one row per chat, not per update
    assert chats_in([h.store], "faq") == ["telegram:faq:f1", "telegram:faq:f2"]
    assert chats_in([h.store], "faq", lambda state: state.get("digest")) == ["telegram:faq:f1"]
    assert chats_in([h.store], "echo") == ["telegram:echo:e1"]
    assert chats_in([h.store], "nobody") == []
    h.close()


def test_a_restored_conversation_is_indexed_again() -> None:
    rows = list(derive_local_rows("conversations", b"telegram:faq:f1", b'{"turns": 1}'))
    assert rows == [(CHATS, b"faq\x00telegram:faq:f1", b"0")]


async def test_jobs_see_the_chats_and_collect_their_sends() -> None:
    from botstream.streams.examples.faq import daily_digest

    ctx = JobContext(bot=None, chats=lambda where=None: ["telegram:faq:f1"] if where else ["a", "b"])
    await daily_digest(ctx)
    assert [chat for chat, _ in ctx.sends] == ["telegram:faq:f1"]
