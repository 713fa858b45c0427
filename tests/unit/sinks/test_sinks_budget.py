"""Budgets: a jitter margin under per-chat limits, and each worker's share of a bot's global budget."""

from __future__ import annotations

import pytest
from sinks_factories import make_bot

from botstream.core.bots import BotRegistry
from botstream.sinks.budget import Budgets, with_margin
from botstream.sinks.limits_defaults import DEFAULT_LIMITS


def test_margin_applies_to_chat_limits_and_leaves_the_bot_budget_whole() -> None:
    tg = with_margin(DEFAULT_LIMITS["telegram"], 0.05)
    assert tg.per_chat_per_second == pytest.approx(0.95)
    assert tg.per_group_per_minute == 19
    assert tg.global_per_second == 30.0 and tg.per_chat_burst == 3.0
    dc = with_margin(DEFAULT_LIMITS["discord"], 0.05)
    assert dc.chat_window == (5, pytest.approx(5.25)) and dc.per_chat_per_second is None


def test_rescale_gives_each_worker_its_share_of_partitions() -> None:
    bot = make_bot("telegram")
    budgets = Budgets(BotRegistry([bot]))
    assert budgets.global_rate(bot) == 30.0
    assert budgets.rescale(3, 6) == 0.5
    assert budgets.global_rate(bot) == 15.0
    assert Budgets(BotRegistry([bot])).rescale(1, 4) == 0.25
    assert budgets.rescale(0, 6) == 0.0
    assert budgets.global_rate(bot) > 0  # the limiter's floor: never starved outright


def test_a_new_limiter_starts_at_the_current_share() -> None:
    bot = make_bot("telegram")
    budgets = Budgets(BotRegistry([bot]))
    budgets.rescale(1, 2)
    assert budgets.global_rate(bot) == 15.0
