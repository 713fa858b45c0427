"""The lag arithmetic and the collector's scrape behaviour, with no broker: a scrape reads the broker
at most once per cache_s, never raises, counts failures, and drops readings once they are stale."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from botstream.core.settings import Settings
from botstream.ops.commands.lag import as_json, render_table
from botstream.ops.lag import ConsumerLagCollector, LagSnapshot, PartitionLag, botstream_groups, compute_lag

SETTINGS = Settings(topic_prefix="bs")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Stands in for read_snapshot: returns the queued answers in turn, raising the exceptions."""

    def __init__(self, *answers: LagSnapshot | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self) -> LagSnapshot:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def snapshot(lag: int) -> LagSnapshot:
    return LagSnapshot([PartitionLag("bs-streams", "bs.updates", 0, committed=100, end=100 + lag)],
                       {"bs.replies.dlq": 3})


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    """sample name{labels} -> value, from the exposition text Prometheus would read."""
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def collector_with(broker: Callable[[], LagSnapshot], clock: Clock, cache_s: float = 10.0,
                   stale_s: float | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ConsumerLagCollector(SETTINGS, "unused:9092", cache_s, stale_s=stale_s, fetch=broker,
                                           clock=clock))
    return registry


LAG0 = "botstream_consumer_lag{group=bs-streams,partition=0,topic=bs.updates}"
DLQ = "botstream_dlq_records{topic=bs.replies.dlq}"
ERRORS = "botstream_consumer_lag_errors_total{}"


def test_lag_is_end_minus_committed_and_never_negative() -> None:
    committed = {("t", 0): 4, ("t", 1): 7, ("t", 2): 9, ("gone", 0): 1}
    ends = {("t", 0): 10, ("t", 1): 7, ("t", 2): 5}
    lags = compute_lag("g", committed, ends)
    assert [(p.partition, p.lag) for p in lags] == [(0, 6), (1, 0), (2, 0)]  # "gone": no end offset, left out
    assert lags[0].as_dict() == {"group": "g", "topic": "t", "partition": 0, "committed": 4, "end": 10, "lag": 6}


def test_groups_are_the_workers_app_ids_plus_the_ones_asked_for() -> None:
    assert botstream_groups(SETTINGS) == ["bs-streams", "bs-sinks"]
    assert botstream_groups(SETTINGS, ["analytics", "bs-sinks", ""]) == ["bs-streams", "bs-sinks", "analytics"]


def test_registering_does_not_call_the_broker() -> None:
    broker = Broker()
    collector_with(broker, Clock())
    assert broker.calls == 0


def test_scrapes_within_cache_s_reuse_one_reading() -> None:
    clock, broker = Clock(), Broker(snapshot(5), snapshot(8))
    registry = collector_with(broker, clock, cache_s=10)
    assert scrape(registry)[LAG0] == 5 and scrape(registry)[DLQ] == 3
    clock.now += 9.9
    assert scrape(registry)[LAG0] == 5
    assert broker.calls == 1
    clock.now += 0.1
    assert scrape(registry)[LAG0] == 8
    assert broker.calls == 2


def test_a_failed_read_is_counted_not_raised_and_the_last_reading_is_served_until_stale() -> None:
    clock = Clock()
    broker = Broker(snapshot(5), RuntimeError("broker down"), RuntimeError("still down"), snapshot(2))
    registry = collector_with(broker, clock, cache_s=10, stale_s=30)
    assert scrape(registry) == {LAG0: 5, DLQ: 3, ERRORS: 0}
    clock.now += 10
    assert scrape(registry) == {LAG0: 5, DLQ: 3, ERRORS: 1}  # 10 s old: still served
    clock.now += 25
    assert scrape(registry) == {ERRORS: 2}  # 35 s old: dropped rather than frozen
    clock.now += 10
    assert scrape(registry) == {LAG0: 2, DLQ: 3, ERRORS: 2}


def test_a_broker_that_never_answered_exports_only_the_error_count() -> None:
    registry = collector_with(Broker(TimeoutError("no answer")), Clock(), cache_s=10)
    assert scrape(registry) == {ERRORS: 1}


def test_table_and_json_show_each_group() -> None:
    lags = [PartitionLag("bs-streams", "bs.updates", 0, 4, 10), PartitionLag("bs-streams", "bs.updates", 1, 7, 7)]
    table = render_table(["bs-streams", "bs-sinks"], lags).splitlines()
    assert table[0].split() == ["group", "topic", "partition", "committed", "end", "lag"]
    assert table[1].split() == ["bs-streams", "bs.updates", "0", "4", "10", "6"]
    assert table[3].split() == ["bs-streams", "total", "6"]
    assert table[4].split() == ["bs-sinks", "(no", "committed", "offsets)"]
    out = as_json(["bs-streams", "bs-sinks"], lags)
    assert out["groups"]["bs-streams"]["total_lag"] == 6
    assert out["groups"]["bs-sinks"] == {"total_lag": 0, "partitions": []}


@pytest.mark.parametrize("argv", [["lag"], ["lag", "--group", "a", "--group", "b", "--json"],
                                  ["lag", "--serve", "--host", "0.0.0.0", "--port", "9309", "--cache", "5"]])
def test_the_command_is_registered(argv: list[str]) -> None:
    from botstream.ops.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.command == "lag" and callable(args.func)
