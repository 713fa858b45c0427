"""Consumer lag read from the real broker: lag = records produced − offset committed, per partition,
the same through the function, the Prometheus collector, the CLI and the exporter process."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from botstream.core.kafka import consumer_config, producer_config
from botstream.core.settings import Settings
from botstream.ops.admin import admin_client
from botstream.ops.cli import main
from botstream.ops.lag import ConsumerLagCollector, botstream_groups, consumer_lag, dlq_records
from tests.pipeline import client_settings
from tests.processes import ProcessGroup, wait_until

pytestmark = pytest.mark.kafka

PRODUCED = {0: 10, 1: 7, 2: 5}  # records per partition
COMMITTED = {0: 4, 1: 7}  # partition 2 never committed: its lag is unknown, so it is not reported


def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = Producer(producer_config(client_settings(bootstrap)))
    for partition, n in counts.items():
        for i in range(n):
            producer.produce(topic, value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets as a consumer of `group` that never joined (a standalone commit)."""
    consumer = Consumer(consumer_config(client_settings(bootstrap), group))
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture
def lagging(kafka_bootstrap: str, test_settings: Settings, make_topic: Callable[..., str]) -> tuple[str, str]:
    """A topic with PRODUCED records, and the streams group of `test_settings` committed at COMMITTED."""
    topic = make_topic("lag", partitions=3)
    produce(kafka_bootstrap, topic, PRODUCED)
    group = f"{test_settings.topic_prefix}-streams"
    commit(kafka_bootstrap, group, topic, COMMITTED)
    return topic, group


@pytest.fixture
def dlq_topic(kafka_bootstrap: str, test_settings: Settings) -> Iterator[str]:
    admin = admin_client(test_settings, kafka_bootstrap)
    name = test_settings.topic("replies.dlq")
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(30)
    try:
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=30)[name].result(30)


def expected(group: str, topic: str) -> dict[tuple[str, str, int], int]:
    return {(group, topic, p): PRODUCED[p] - m for p, m in COMMITTED.items()}


def test_lag_is_end_minus_committed_per_partition(kafka_bootstrap: str, test_settings: Settings,
                                                 lagging: tuple[str, str], unique: Callable[[str], str]) -> None:
    topic, group = lagging
    other = unique("analytics")
    commit(kafka_bootstrap, other, topic, {2: 1})
    admin = admin_client(test_settings, kafka_bootstrap)
    lags = consumer_lag(admin, botstream_groups(test_settings, [other]))
    got = {(p.group, p.topic, p.partition): p.lag for p in lags}
    assert got == {**expected(group, topic), (other, topic, 2): PRODUCED[2] - 1}
    by_partition = {p.partition: p for p in lags if p.group == group}
    assert (by_partition[0].committed, by_partition[0].end) == (COMMITTED[0], PRODUCED[0])


def test_collector_exports_the_lag_and_caches_it(kafka_bootstrap: str, test_settings: Settings,
                                                lagging: tuple[str, str], dlq_topic: str) -> None:
    topic, group = lagging
    produce(kafka_bootstrap, dlq_topic, {0: 2, 1: 1})
    collector = ConsumerLagCollector(test_settings, kafka_bootstrap, cache_s=3600)
    registry = CollectorRegistry()
    registry.register(collector)
    assert samples(registry, "botstream_consumer_lag") == {
        (g, t, str(p)): float(v) for (g, t, p), v in expected(group, topic).items()}
    assert samples(registry, "botstream_dlq_records") == {(dlq_topic,): 3.0}
    produce(kafka_bootstrap, topic, {0: 5})  # within cache_s: the scrape serves the cached reading
    assert samples(registry, "botstream_consumer_lag")[(group, topic, "0")] == PRODUCED[0] - COMMITTED[0]
    assert samples(registry, "botstream_consumer_lag_errors_total") == {(): 0.0}
    assert dlq_records(admin_client(test_settings, kafka_bootstrap), dlq_topic) == 3


def test_collector_counts_an_unreachable_broker_instead_of_raising(test_settings: Settings) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    collector = ConsumerLagCollector(test_settings, dead, cache_s=3600, timeout=1.0)
    registry = CollectorRegistry()
    registry.register(collector)
    assert samples(registry, "botstream_consumer_lag") == {}  # the failed read; then cached: no second try
    assert samples(registry, "botstream_consumer_lag_errors_total") == {(): 1.0}


def test_cli_prints_the_lag(kafka_bootstrap: str, test_settings: Settings, lagging: tuple[str, str],
                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    topic, group = lagging
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("BOTSTREAM_TOPIC_PREFIX", test_settings.topic_prefix)
    assert main(["lag", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sinks = f"{test_settings.topic_prefix}-sinks"
    assert set(out["groups"]) == {group, sinks}
    assert out["groups"][sinks] == {"total_lag": 0, "partitions": []}
    assert {(r["group"], r["topic"], r["partition"]): r["lag"] for r in out["groups"][group]["partitions"]} \
        == expected(group, topic)
    assert out["groups"][group]["total_lag"] == sum(expected(group, topic).values())
    assert main(["lag"]) == 0
    table = capsys.readouterr().out.splitlines()
    row0 = next(line.split() for line in table if line.split()[:3] == [group, topic, "0"])
    assert row0[3:] == [str(COMMITTED[0]), str(PRODUCED[0]), str(PRODUCED[0] - COMMITTED[0])]
    assert any(line.split() == [sinks, "(no", "committed", "offsets)"] for line in table)


def test_exporter_process_serves_the_lag(kafka_bootstrap: str, test_settings: Settings, lagging: tuple[str, str],
                                         processes: ProcessGroup) -> None:
    topic, group = lagging
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = processes.start("lag", ["-m", "botstream", "lag", "--serve", "--port", str(port)],
                               env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                    "BOTSTREAM_TOPIC_PREFIX": test_settings.topic_prefix})

    def scrape() -> str | None:
        assert exporter.alive(), exporter.output()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                return resp.read().decode()
        except OSError:
            return None

    text = wait_until(scrape, timeout=30, what="the lag exporter to answer")
    lags = {(s.labels["group"], s.labels["topic"], int(s.labels["partition"])): s.value
            for fam in text_string_to_metric_families(text) if fam.name == "botstream_consumer_lag"
            for s in fam.samples}
    assert lags == {k: float(v) for k, v in expected(group, topic).items()}


LABELS = {"botstream_consumer_lag": ("group", "topic", "partition"), "botstream_dlq_records": ("topic",),
          "botstream_consumer_lag_errors_total": ()}


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    """The exposition the registry serves, parsed back: sample name -> {label values: value}."""
    out: dict[tuple[str, ...], float] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            if s.name == name:
                assert set(s.labels) == set(LABELS[name])
                out[tuple(s.labels[k] for k in LABELS[name])] = s.value
    return out
