"""Fault decisions are deterministic under a seed and follow the configured mix."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from botstream.sandbox.config import FaultConfig, LatencySpec
from botstream.sandbox.faults import NO_FAULT, chat_fault, decide, latency_seconds


def run(faults: FaultConfig, seed: int, n: int) -> list[tuple[str, int, float]]:
    rng = random.Random(seed)
    return [(d.kind, d.status, d.delay) for d in (decide(faults, rng) for _ in range(n))]


def test_same_seed_same_sequence_different_seed_different() -> None:
    faults = FaultConfig(ratio_5xx=0.2, timeout_ratio=0.05, reset_ratio=0.05)
    assert run(faults, 7, 500) == run(faults, 7, 500)
    assert run(faults, 7, 500) != run(faults, 8, 500)


def test_kinds_follow_their_ratios() -> None:
    faults = FaultConfig(ratio_5xx=0.2, timeout_ratio=0.1, reset_ratio=0.05, statuses_5xx=(500, 503))
    kinds = Counter(k for k, _, _ in run(faults, 1, 20_000))
    assert kinds["error_5xx"] / 20_000 == pytest.approx(0.2, abs=0.015)
    assert kinds["timeout"] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert kinds["reset"] / 20_000 == pytest.approx(0.05, abs=0.01)
    statuses = {s for k, s, _ in run(faults, 1, 2_000) if k == "error_5xx"}
    assert statuses == {500, 503}


def test_every_request_draws_the_same_count_so_outcomes_do_not_shift() -> None:
    """Raising the 5xx ratio only turns successes into failures; earlier failures stay put."""
    low = run(FaultConfig(ratio_5xx=0.1), 3, 1_000)
    high = run(FaultConfig(ratio_5xx=0.3), 3, 1_000)
    low_fail = {i for i, (k, _, _) in enumerate(low) if k != "none"}
    high_fail = {i for i, (k, _, _) in enumerate(high) if k != "none"}
    assert low_fail < high_fail


def test_inactive_faults_draw_nothing() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    assert decide(FaultConfig(), rng) is NO_FAULT
    assert rng.getstate() == state


def test_timeout_carries_the_hold_and_reset_no_status() -> None:
    hold = run(FaultConfig(timeout_ratio=1.0, timeout_hold_seconds=12.5), 0, 1)
    assert hold[0][0] == "timeout"
    rng = random.Random(0)
    decision = decide(FaultConfig(timeout_ratio=1.0, timeout_hold_seconds=12.5), rng)
    assert decision.hold == 12.5
    assert decide(FaultConfig(reset_ratio=1.0), rng).kind == "reset"


@pytest.mark.parametrize(
    ("spec", "u", "seconds"),
    [
        (LatencySpec(), 0.5, 0.0),
        (LatencySpec(kind="fixed", ms=250), 0.9, 0.25),
        (LatencySpec(kind="uniform", min_ms=100, max_ms=300), 0.5, 0.2),
        (LatencySpec(kind="uniform", min_ms=100, max_ms=300), 0.0, 0.1),
        (LatencySpec(kind="exponential", mean_ms=100), 0.5, 0.1 * 0.6931471805599453),
        (LatencySpec(kind="exponential", mean_ms=100, cap_ms=150), 0.999, 0.15),
        (LatencySpec(kind="fixed", ms=900, cap_ms=500), 0.1, 0.5),
    ],
)
def test_latency_distributions(spec: LatencySpec, u: float, seconds: float) -> None:
    assert latency_seconds(spec, u) == pytest.approx(seconds)


def test_exponential_latency_mean_is_close_to_configured() -> None:
    faults = FaultConfig(latency=LatencySpec(kind="exponential", mean_ms=80, cap_ms=100_000))
    delays = [d for _, _, d in run(faults, 11, 20_000)]
    assert sum(delays) / len(delays) == pytest.approx(0.08, rel=0.05)


def test_latency_alone_is_not_a_failure() -> None:
    decision = decide(FaultConfig(latency=LatencySpec(kind="fixed", ms=40)), random.Random(0))
    assert decision.kind == "none"
    assert decision.delay == pytest.approx(0.04)


def test_chat_faults_are_by_chat_and_migrate_only_on_telegram() -> None:
    faults = FaultConfig(forbidden_chats=("42",), missing_chats=("C404",), migrate={"-5": "-1005"})
    assert chat_fault(faults, "42", "slack") == chat_fault(faults, "42", "telegram")
    forbidden = chat_fault(faults, "42", "discord")
    assert forbidden is not None and forbidden.kind == "forbidden"
    missing = chat_fault(faults, "C404", "slack")
    assert missing is not None and missing.kind == "missing"
    migrated = chat_fault(faults, "-5", "telegram")
    assert migrated is not None and (migrated.kind, migrated.new_chat) == ("migrate", "-1005")
    assert chat_fault(faults, "-5", "discord") is None
    assert chat_fault(faults, "7", "telegram") is None
