"""Rate-limit arithmetic on a fake clock: buckets, windows, the per-bot limiter and budget sharing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sinks_factories import make_bot

from botstream.core.bots import Limits
from botstream.sinks.limits_defaults import DEFAULT_LIMITS, resolve_limits
from botstream.sinks.outcomes import DiscordBucketUpdate, Wait
from botstream.sinks.ratelimit import (
    MIN_SHARE_RATE,
    BotLimiter,
    LearnedWindow,
    SlidingWindow,
    TokenBucket,
    share_of_budget,
)


def drain(limiter: BotLimiter, chat_key: str, chat_type: str | None, start: float, until: float) -> list[float]:
    """Send as fast as the limiter allows on one chat, stepping the fake clock by its answers."""
    now, grants = start, []
    while now < until:
        wait = limiter.reserve(chat_key, chat_type, now)
        if wait == 0.0:
            grants.append(now)
        else:
            now += wait
    return grants


class TestTokenBucket:
    def test_burst_then_exact_wait_then_granted(self) -> None:
        bucket = TokenBucket(rate_per_s=1.0, burst=3)
        assert [bucket.try_take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert bucket.try_take(0.0) == pytest.approx(1.0)
        assert bucket.try_take(0.25) == pytest.approx(0.75)
        assert bucket.try_take(1.0) == 0.0
        assert bucket.try_take(1.0) == pytest.approx(1.0)

    def test_refused_take_consumes_nothing(self) -> None:
        bucket = TokenBucket(rate_per_s=2.0, burst=1)
        assert bucket.try_take(0.0) == 0.0
        for _ in range(10):
            assert bucket.try_take(0.1) == pytest.approx(0.4)
        assert bucket.try_take(0.5) == 0.0

    def test_refill_stops_at_burst(self) -> None:
        bucket = TokenBucket(rate_per_s=10.0, burst=2)
        assert bucket.try_take(0.0) == 0.0
        assert [bucket.try_take(100.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]

    def test_pause_refuses_until_its_end_and_resumes_with_one_token(self) -> None:
        bucket = TokenBucket(rate_per_s=1.0, burst=5)
        bucket.pause_until(10.0)
        assert bucket.try_take(4.0) == pytest.approx(6.0)
        assert bucket.try_take(10.0) == 0.0
        assert bucket.try_take(10.0) == pytest.approx(1.0)
        assert bucket.try_take(11.0) == 0.0

    def test_pause_never_shortens(self) -> None:
        bucket = TokenBucket(rate_per_s=1.0, burst=1)
        bucket.pause_until(10.0)
        bucket.pause_until(5.0)
        assert bucket.wait(0.0) == pytest.approx(10.0)

    def test_set_rate(self) -> None:
        bucket = TokenBucket(rate_per_s=1.0, burst=4)
        bucket.set_rate(4.0, burst=2)
        assert (bucket.rate, bucket.burst) == (4.0, 2)
        assert [bucket.try_take(0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.25)]

    def test_taking_more_than_the_burst_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            TokenBucket(1.0, 2).try_take(0.0, n=3)

    def test_idle_when_full(self) -> None:
        bucket = TokenBucket(rate_per_s=1.0, burst=2)
        bucket.take(0.0)
        assert not bucket.idle(0.5)
        assert bucket.idle(1.0)


class TestSlidingWindow:
    def test_limit_per_window(self) -> None:
        window = SlidingWindow(limit=3, window_s=10.0)
        assert [window.try_take(t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
        assert window.try_take(5.0) == pytest.approx(5.0)  # until the send at 0 leaves the window
        assert window.try_take(10.0) == 0.0
        assert window.try_take(10.5) == pytest.approx(0.5)

    def test_pause(self) -> None:
        window = SlidingWindow(limit=3, window_s=10.0)
        window.pause_until(4.0)
        assert window.try_take(1.0) == pytest.approx(3.0)
        assert window.try_take(4.0) == 0.0


class TestLearnedWindow:
    def test_counts_down_then_resets(self) -> None:
        window = LearnedWindow.from_update(DiscordBucketUpdate("b", limit=2, remaining=1, reset_after_s=2.0), 0.0)
        assert window.wait(0.0) == 0.0
        window.take(0.0)
        assert window.wait(0.5) == pytest.approx(1.5)
        assert window.wait(2.0) == 0.0
        window.take(2.0)
        window.take(2.0)
        assert window.wait(2.0) == pytest.approx(2.0)  # the next window, its length as learned

    def test_same_window_report_only_lowers_the_count(self) -> None:
        window = LearnedWindow(limit=5, remaining=2, reset_at=5.0, window_s=5.0)
        window.update(DiscordBucketUpdate("b", 5, 4, 4.0), now=1.0)  # sent before our last two sends landed
        assert window.remaining == 2
        window.update(DiscordBucketUpdate("b", 5, 0, 3.5), now=1.5)
        assert window.wait(1.5) == pytest.approx(3.5)


class TestBotLimiter:
    def test_telegram_chat_burst_then_one_per_second(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        key = "telegram:b1:42"
        assert [limiter.reserve(key, "private", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limiter.reserve(key, "private", 0.0) == pytest.approx(1.0)
        assert limiter.reserve(key, "private", 1.0) == 0.0

    def test_refusal_consumes_nothing_anywhere(self) -> None:
        bot = make_bot("telegram", limits=Limits(global_per_second=1.0, per_chat_per_second=0.1, per_chat_burst=1))
        limiter = BotLimiter.for_bot(bot)
        assert limiter.reserve("telegram:b1:1", "private", 0.0) == 0.0
        assert limiter.reserve("telegram:b1:1", "private", 1.0) == pytest.approx(9.0)
        # Chat 1 was refused by its own bucket: the global token refilled at t=1 is still there.
        assert limiter.reserve("telegram:b1:2", "private", 1.0) == 0.0

    def test_chat_429_pauses_only_that_chat(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        limiter.on_wait(Wait(5.0, "chat"), "telegram:b1:1", now=0.0)
        assert limiter.reserve("telegram:b1:1", "private", 1.0) == pytest.approx(4.0)
        assert limiter.reserve("telegram:b1:2", "private", 1.0) == 0.0
        assert limiter.reserve("telegram:b1:1", "private", 5.0) == 0.0

    @pytest.mark.parametrize("scope", ["global", "bot"])
    def test_bot_wide_429_pauses_every_chat(self, scope: str) -> None:
        limiter = BotLimiter.for_bot(make_bot("discord"))
        limiter.on_wait(Wait(2.0, scope), "discord:b1:1", now=0.0)
        assert limiter.reserve("discord:b1:1", None, 0.5) == pytest.approx(1.5)
        assert limiter.reserve("discord:b1:2", None, 0.5) == pytest.approx(1.5)
        assert limiter.reserve("discord:b1:2", None, 2.0) == 0.0

    def test_telegram_group_twenty_per_minute(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        grants = drain(limiter, "telegram:b1:-1001234", "supergroup", 0.0, 120.0)
        assert len([t for t in grants if t < 60.0]) == 20
        assert min(t for t in grants if t >= 60.0) == pytest.approx(60.0)
        assert all(len([u for u in grants if t <= u < t + 60.0]) <= 20 for t in grants)

    def test_negative_telegram_id_is_a_group_even_when_the_type_is_unknown(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        assert len([t for t in drain(limiter, "telegram:b1:-55", "unknown", 0.0, 59.0)]) == 20

    def test_private_chat_is_not_group_limited(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        assert len(drain(limiter, "telegram:b1:55", "private", 0.0, 59.5)) == 3 + 59

    def test_discord_default_channel_window_then_learned_bucket(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("discord"))
        key = "discord:b1:1100"
        assert [limiter.reserve(key, None, 0.0) for _ in range(5)] == [0.0] * 5
        assert limiter.reserve(key, None, 0.0) == pytest.approx(5.0)
        limiter.learn_discord(key, DiscordBucketUpdate("abcd", limit=10, remaining=3, reset_after_s=2.0), now=0.5)
        assert [limiter.reserve(key, None, 0.5) for _ in range(3)] == [0.0] * 3
        assert limiter.reserve(key, None, 0.5) == pytest.approx(2.0)
        assert limiter.reserve(key, None, 2.5) == 0.0
        assert limiter.reserve("discord:b1:2200", None, 0.5) == 0.0  # another channel: its own bucket

    def test_discord_route_429_pauses_that_channel_only(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("discord"))
        limiter.learn_discord("discord:b1:1", DiscordBucketUpdate("abcd", 5, 4, 5.0), now=0.0)
        limiter.on_wait(Wait(3.0, "route:abcd"), "discord:b1:1", now=0.0)
        assert limiter.reserve("discord:b1:1", None, 1.0) == pytest.approx(2.0)
        assert limiter.reserve("discord:b1:2", None, 1.0) == 0.0

    def test_discord_global_fifty_per_second(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("discord"))
        now, grants = 0.0, 0
        while now < 10.0:  # many channels, so only the global bucket binds
            wait = limiter.reserve(f"discord:b1:{grants}", None, now)
            grants, now = (grants + 1, now) if wait == 0.0 else (grants, now + wait)
        assert 500 <= grants <= 50 * 10 + DEFAULT_LIMITS["discord"].global_burst

    def test_whatsapp_pair_limit(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("whatsapp"))
        grants = drain(limiter, "whatsapp:b1:555/49151", "private", 0.0, 61.0)
        assert len([t for t in grants if t < 1.0]) == 45  # the burst, paced by the 80/s number bucket
        assert len(grants) == 45 + 10  # then one per 6 s
        assert grants[45] == pytest.approx(6.0)  # the 46th waits for the first token refilled since t=0
        assert limiter.reserve("whatsapp:b1:555/49152", "private", 1.0) == 0.0  # another user flows

    def test_whatsapp_pair_429_pauses_that_user_only(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("whatsapp"))
        limiter.on_wait(Wait(6.0, "chat"), "whatsapp:b1:555/49151", now=0.0)
        assert limiter.reserve("whatsapp:b1:555/49151", "private", 0.0) == pytest.approx(6.0)
        assert limiter.reserve("whatsapp:b1:555/49152", "private", 0.0) == 0.0

    def test_slack_workspaces_have_separate_budgets(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("slack", limits=Limits(global_per_second=1.0)))
        assert limiter.reserve("slack:b1:T1/C1", None, 0.0) == 0.0
        assert limiter.reserve("slack:b1:T1/C2", None, 0.0) == pytest.approx(1.0)
        assert limiter.reserve("slack:b1:T2/C1", None, 0.0) == 0.0

    def test_idle_chats_are_evicted(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        for n in range(1000):
            limiter.reserve(f"telegram:b1:{n}", "private", n * 0.04)
        assert len(limiter) < 1000  # amortised eviction already dropped refilled chats
        assert limiter.evict_idle(200.0) > 0
        assert len(limiter) == 0

    def test_max_chats_bounds_memory(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram", limits=Limits(global_per_second=1e6)), max_chats=100)
        for n in range(1000):
            limiter.reserve(f"telegram:b1:{n}", "private", 0.0)
        assert len(limiter) <= 100

    def test_overrides_replace_defaults(self) -> None:
        limits = resolve_limits(make_bot("telegram", limits=Limits(global_per_second=10, per_chat_burst=1,
                                                                   per_group_per_minute=5)))
        assert (limits.global_per_second, limits.global_burst) == (10, 2)
        assert (limits.per_chat_per_second, limits.per_chat_burst, limits.per_group_per_minute) == (1.0, 1, 5)


class TestSharedBudget:
    def test_share_follows_partitions(self) -> None:
        assert share_of_budget(30.0, 2, 6) == pytest.approx(10.0)
        assert share_of_budget(30.0, 6, 6) == pytest.approx(30.0)

    def test_floor(self) -> None:
        assert share_of_budget(30.0, 0, 6) == MIN_SHARE_RATE
        assert share_of_budget(0.1, 1, 64) == 0.1  # never more than the whole budget

    @pytest.mark.parametrize(("owned", "total"), [(7, 6), (-1, 6), (0, 0)])
    def test_invalid(self, owned: int, total: int) -> None:
        with pytest.raises(ValueError):
            share_of_budget(30.0, owned, total)

    def test_rescale_changes_the_global_rate_and_burst(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))  # 30/s, burst 6
        assert limiter.reserve("telegram:b1:0", "private", 0.0) == 0.0
        limiter.rescale(0.5)  # 15/s, burst 3: the 5 tokens left are cut to 3
        assert limiter.global_rate == pytest.approx(15.0)
        waits = [limiter.reserve(f"telegram:b1:{n}", "private", 0.0) for n in range(1, 5)]
        assert waits == [0.0, 0.0, 0.0, pytest.approx(1 / 15)]

    def test_rescale_leaves_per_chat_limits_whole(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        limiter.rescale(0.1)  # 3/s, burst 1
        assert limiter.reserve("telegram:b1:1", "private", 0.0) == 0.0
        assert limiter.reserve("telegram:b1:1", "private", 1 / 3) == 0.0  # the chat's burst of 3 is intact

    def test_workers_together_stay_within_the_bot_budget(self) -> None:
        rate, total, duration = 10.0, 6, 20.0
        bot = make_bot("telegram", limits=Limits(global_per_second=rate))
        workers = [BotLimiter.for_bot(bot) for _ in range(3)]
        for limiter, owned in zip(workers, (1, 2, 3), strict=True):
            limiter.rescale(owned / total)
            assert limiter.global_rate == pytest.approx(share_of_budget(rate, owned, total))
        grants = 0
        for w, limiter in enumerate(workers):
            now, chat = 0.0, 0
            while now < duration:
                wait = limiter.reserve(f"telegram:b1:{w}-{chat}", "private", now)
                if wait == 0.0:
                    grants, chat = grants + 1, chat + 1
                else:
                    now += wait
        bursts = sum(max(1.0, 2.0 * s) for s in (1 / 6, 2 / 6, 3 / 6))
        assert rate * duration * 0.95 <= grants <= rate * duration + bursts


timelines = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=1.5, allow_nan=False), st.integers(min_value=0, max_value=5),
              st.sampled_from([None, None, None, None, "chat", "bot"])),
    min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(timelines, st.sampled_from(["telegram", "slack", "whatsapp", "generic"]),
       st.floats(min_value=0.5, max_value=20.0), st.floats(min_value=0.2, max_value=3.0))
def test_never_more_than_rate_times_t_plus_burst(
    timeline: list[tuple[float, int, str | None]], platform: str, global_rate: float, chat_rate: float,
) -> None:
    """Whatever the arrivals (and 429 pauses among them), grants in any window [a, b] stay within
    rate * (b - a) + burst, for the bot-wide bucket and for every chat's bucket."""
    bot = make_bot(platform, limits=Limits(global_per_second=global_rate, per_chat_per_second=chat_rate,
                                           per_chat_burst=2))
    limiter = BotLimiter.for_bot(bot)
    limits = limiter.limits
    team = "T1/" if platform in ("slack", "whatsapp") else ""
    now, granted = 0.0, []
    for gap, chat, rate_limited in timeline:
        now += gap
        key = f"{platform}:b1:{team}{chat}"
        if rate_limited:
            limiter.on_wait(Wait(gap, rate_limited), key, now)
        elif limiter.reserve(key, "private", now) == 0.0:
            granted.append((now, chat))

    def within(times: list[float], rate: float, burst: float) -> bool:
        return all(j - i + 1 <= rate * (times[j] - times[i]) + burst + 1e-6
                   for i in range(len(times)) for j in range(i, len(times)))

    assert within([t for t, _ in granted], limits.global_per_second, limits.global_burst)
    for chat in {c for _, c in granted}:
        assert within([t for t, c in granted if c == chat], chat_rate, 2)


class TestSettle:
    """A send counts at the platform when it arrives, not when it leaves: `settle` re-dates the take."""

    def test_full_bucket_refills_from_the_response_not_from_leaving(self) -> None:
        bucket = TokenBucket(rate_per_s=1.0, burst=3)
        bucket.take(0.0)
        bucket.settle(0.2)  # arrived (at the latest) 0.2 s after leaving: the platform's bucket was full till then
        bucket.take(0.2)
        bucket.take(0.2)
        assert bucket.wait(1.0) == pytest.approx(0.2)  # without settle it would be 0.0: one token early

    def test_settle_of_a_bucket_with_room_changes_nothing(self) -> None:
        settled, plain = TokenBucket(1.0, 3), TokenBucket(1.0, 3)
        for b in (settled, plain):
            for _ in range(3):
                b.take(0.0)
            b.take(1.0)
        settled.settle(1.3)
        assert settled.wait(1.5) == pytest.approx(plain.wait(1.5))

    def test_window_stamp_moves_to_the_response(self) -> None:
        window = SlidingWindow(limit=2, window_s=10.0)
        window.take(0.0)
        window.take(1.0)
        window.settle(1.5)
        assert window.wait(10.5) == pytest.approx(0.0)  # the first send has left the window
        assert window.wait(10.0) == pytest.approx(0.0)
        window.take(10.5)
        assert window.wait(10.5) == pytest.approx(1.0)  # the second counts from 1.5, not 1.0

    def test_settle_of_an_unknown_chat_is_harmless(self) -> None:
        limiter = BotLimiter.for_bot(make_bot("telegram"))
        limiter.settle("telegram:b1:42", 5.0)
        assert limiter.reserve("telegram:b1:42", "private", 5.0) == 0.0


def platform_refusals(platform_bucket, platform_window, delays: list[tuple[float, float]],
                      chat_type: str, settle: bool) -> int:
    """One chat sending one request at a time as fast as the shipped limiter allows (with its margin,
    which alone covers delays up to 50 ms), each request arriving `arrive` s after leaving and
    answered `answer` s later; counts the sandbox's refusals."""
    from botstream.sinks.budget import with_margin
    from botstream.sinks.limits_defaults import DEFAULT_LIMITS as defaults

    limiter = BotLimiter("telegram", with_margin(defaults["telegram"]))
    key = "telegram:b1:-100" if chat_type == "group" else "telegram:b1:100"
    now, refused = 0.0, 0
    for arrive, answer in delays:
        while (wait := limiter.reserve(key, chat_type, now)) > 0.0:
            now += wait
        at = now + arrive
        lims = [platform_bucket] + ([platform_window] if platform_window is not None else [])
        if any(lim.wait(at) > 0.0 for lim in lims):
            refused += 1
        else:
            for lim in lims:
                lim.take(at)
        now = at + answer
        if settle:
            limiter.settle(key, now)
    return refused


def test_a_slow_first_arrival_trips_a_limiter_that_does_not_settle() -> None:
    """The failure `settle` exists for: the burst's first request arrives late, the platform's bucket
    was full (its refill wasted) until then, and a sender refilling from the moment of leaving is one
    token ahead of the platform a second later."""
    from botstream.sandbox.limits import TokenBucket as PlatformBucket

    delays = [(0.2, 0.001)] + [(0.001, 0.001)] * 5
    assert platform_refusals(PlatformBucket(1.0, 3), None, delays, "private", settle=False) >= 1
    assert platform_refusals(PlatformBucket(1.0, 3), None, delays, "private", settle=True) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.5), st.floats(min_value=0.0, max_value=0.2)),
                min_size=1, max_size=60),
       st.sampled_from(["private", "group"]))
def test_a_settling_sender_never_trips_the_sandbox_limits_whatever_the_delays(
    delays: list[tuple[float, float]], chat_type: str,
) -> None:
    """Against the sandbox's own Telegram per-chat bucket and group window, arrival delays up to 10x
    the margin's worth."""
    from botstream.sandbox.limits import SlidingWindowLog
    from botstream.sandbox.limits import TokenBucket as PlatformBucket

    window = SlidingWindowLog(20, 60.0) if chat_type == "group" else None
    assert platform_refusals(PlatformBucket(1.0, 3), window, delays, chat_type, settle=True) == 0
