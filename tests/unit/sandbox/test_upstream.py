"""The generic upstream's sans-IO core: decisions under a seed, pinned keys, concurrency stats."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from botstream.sandbox.config import ConfigError, SandboxConfig, UpstreamConfig
from botstream.sandbox.http import Request
from botstream.sandbox.upstream import Upstream, UpstreamStats, decide_upstream, request_key


def post(path: str, body: object = None, **headers: str) -> Request:
    return Request("POST", path, "", {k.lower().replace("_", "-"): v for k, v in headers.items()},
                   json.dumps(body).encode() if body is not None else b"")


def test_ratios_split_one_draw_and_replay_under_a_seed() -> None:
    cfg = UpstreamConfig(error_ratio=0.2, rate_limit_ratio=0.2, hang_ratio=0.1)
    first = decide_upstream(cfg, None, random.Random(3)).kind
    rng = random.Random(3)
    run = [decide_upstream(cfg, None, rng).kind for _ in range(2000)]
    rng2 = random.Random(3)
    assert run == [decide_upstream(cfg, None, rng2).kind for _ in range(2000)]
    share = Counter(run)
    print(f"\n2000 draws: {dict(share)}")
    assert first == run[0] and set(share) == {"ok", "error", "rate_limit", "hang"}
    assert 300 < share["error"] < 500 and 300 < share["rate_limit"] < 500 and 120 < share["hang"] < 280


def test_a_pinned_key_overrides_the_draw_but_keeps_the_draw_count() -> None:
    cfg = UpstreamConfig(error_ratio=1.0, keys={"chat-9": "hang", "chat-1": "ok"})
    a, b = random.Random(1), random.Random(1)
    assert decide_upstream(cfg, "chat-9", a).kind == "hang"
    assert decide_upstream(cfg, "chat-1", a).kind == "ok"
    decide_upstream(cfg, None, b)
    decide_upstream(cfg, None, b)
    assert a.random() == b.random()  # the same number of draws, whatever the key
    assert decide_upstream(UpstreamConfig(), "x", random.Random(1)).kind == "ok"
    assert decide_upstream(UpstreamConfig(keys={"x": "rate_limit"}), "x", random.Random(1)).status == 429


def test_the_key_comes_from_the_header_or_the_json_field() -> None:
    assert request_key(post("/upstream/llm/x", {"user": "c1"}), "user") == "c1"
    assert request_key(post("/upstream/llm/x", {"user": "c1"}, x_upstream_key="h"), "user") == "h"
    assert request_key(post("/upstream/llm/x", {"chat": 5}), "chat") == "5"
    assert request_key(post("/upstream/llm/x"), "user") is None


def test_answers_errors_throttles_and_hangs() -> None:
    up = Upstream(UpstreamConfig(retry_after_s=0.5, keys={"e": "error", "r": "rate_limit", "h": "hang"}))
    ok = up.handle(post("/upstream/llm/v1/answer", {"question": " why? "}))
    assert ok is not None and ok.reply.status == 200
    assert ok.reply.json()["answer"] == "[llm] You asked: why?" and ok.reply.json()["path"] == "/v1/answer"
    err = up.handle(post("/upstream/llm/v1/answer", {"user": "e"}))
    assert err is not None and err.reply.status in (500, 502, 503)
    throttled = up.handle(post("/upstream/llm/v1/answer", {"user": "r"}))
    assert throttled is not None and throttled.reply.status == 429
    assert (b"retry-after", b"0.5") in throttled.reply.headers
    hang = up.handle(post("/upstream/llm/v1/answer", {"user": "h"}))
    assert hang is not None and hang.hold == 300.0 and hang.reply.status == 504
    assert up.handle(post("/upstream/")) is None
    assert up.stats.snapshot()["outcomes"] == {"llm": {"ok": 1, "error": 1, "rate_limit": 1, "hang": 1}}


def test_authorization_is_checked_when_configured() -> None:
    up = Upstream(UpstreamConfig(authorization="Bearer k"))
    denied = up.handle(post("/upstream/crm/x"))
    allowed = up.handle(post("/upstream/crm/x", authorization="Bearer k"))
    assert denied is not None and denied.reply.status == 401
    assert allowed is not None and allowed.reply.status == 200


def test_stats_measure_the_peak_and_a_reset_keeps_what_is_in_flight() -> None:
    stats = UpstreamStats()
    for _ in range(3):
        stats.enter("llm")
    stats.enter("crm")
    stats.leave("llm")
    snap = stats.snapshot()
    assert snap["peak_in_flight"] == {"llm": 3, "crm": 1} and snap["peak_in_flight_total"] == 4
    assert snap["in_flight"] == {"llm": 2, "crm": 1} and snap["requests"] == {"llm": 3, "crm": 1}
    stats.reset()
    assert stats.snapshot()["peak_in_flight"] == {"llm": 2, "crm": 1}
    for name in ("llm", "llm", "crm"):
        stats.leave(name)
    assert stats.snapshot()["in_flight_total"] == 0


@pytest.mark.parametrize("patch", [
    {"upstream": {"error_ratio": 0.7, "hang_ratio": 0.7}},
    {"upstream": {"keys": {"c": "explode"}}},
    {"upstream": {"error_statuses": [404]}},
    {"upstream": {"retry_after_s": -1}},
    {"upstream": {"hang": 1}},
])
def test_bad_upstream_config_is_refused(patch: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SandboxConfig().merged(patch)
