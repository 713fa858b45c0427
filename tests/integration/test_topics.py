"""The topic catalog applied to the real broker, and the data team's tail."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from botstream.core.settings import Settings
from botstream.ops.admin import admin_client, apply_catalog, list_catalog
from botstream.schemas.headers import CORRELATION_ID
from botstream.schemas.topics import catalog
from tests.pipeline import client_settings, make_update, produce_updates
from tests.processes import wait_until

pytestmark = pytest.mark.kafka


def test_apply_is_idempotent_and_aligns_configs(test_settings: Settings, kafka_bootstrap: str) -> None:
    first = apply_catalog(test_settings, kafka_bootstrap)
    assert first.ok and len(first.created) == len(catalog(test_settings))
    admin = admin_client(test_settings, kafka_bootstrap)
    dlq = test_settings.topic("replies.dlq")
    res = ConfigResource(ConfigResource.Type.TOPIC, dlq, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    described = ConfigResource(ConfigResource.Type.TOPIC, dlq)
    wait_until(lambda: admin.describe_configs([described])[described].result(30)["retention.ms"].value == "1000",
               timeout=30, what="the broker to show the drifted config")  # KRaft config changes propagate async
    second = apply_catalog(test_settings, kafka_bootstrap)
    assert second.ok and second.created == []
    assert second.updated == {dlq: {"retention.ms": str(30 * 24 * 3600 * 1000)}}
    third = apply_catalog(test_settings, kafka_bootstrap)
    assert third.updated == {} and len(third.unchanged) == len(catalog(test_settings))
    rows = {r["topic"]: r for r in list_catalog(test_settings, kafka_bootstrap)}
    assert rows[test_settings.topic("updates")]["cluster_partitions"] == test_settings.partitions
    cleanup = {t.name: t.configs["cleanup.policy"] for t in catalog(test_settings)}
    assert cleanup[f"{test_settings.topic_prefix}-streams-dedupe-changelog"] == "compact,delete"
    assert cleanup[f"{test_settings.topic_prefix}-streams-conversations-changelog"] == "compact"
    assert cleanup[test_settings.topic("updates")] == "delete"


def test_partition_counts_are_never_changed_silently(test_settings: Settings, kafka_bootstrap: str) -> None:
    admin = admin_client(test_settings, kafka_bootstrap)
    fewer, more = test_settings.topic("updates"), test_settings.topic("replies")
    for name, n in ((fewer, 2), (more, 8)):
        admin.create_topics([NewTopic(name, n, 1)])[name].result(30)
    report = apply_catalog(test_settings, kafka_bootstrap)
    assert any(fewer in w and "co-partitioning" in w for w in report.warnings)
    assert any(more in e and "cannot shrink" in e for e in report.errors) and not report.ok
    grown = apply_catalog(test_settings, kafka_bootstrap, grow=True)
    assert fewer in grown.grown
    cli = subprocess.run([sys.executable, "-m", "botstream", "topics", "apply"], capture_output=True, text=True,
                         env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                              "BOTSTREAM_TOPIC_PREFIX": test_settings.topic_prefix,
                              "BOTSTREAM_PARTITIONS": str(test_settings.partitions)}, timeout=60)
    assert cli.returncode == 1 and "cannot shrink" in cli.stdout


def test_tail_decodes_records_to_json_lines(test_settings: Settings, kafka_bootstrap: str) -> None:
    settings = dataclasses.replace(test_settings)
    assert apply_catalog(settings, kafka_bootstrap).ok
    update = make_update("42", "hello data team")
    produce_updates(kafka_bootstrap, settings.topic("updates"), [update])
    out = subprocess.run([sys.executable, "-m", "botstream", "topics", "tail", "updates", "--from-beginning",
                          "--json", "--max", "1", "--idle-exit", "20"], capture_output=True, text=True, timeout=90,
                         env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                              "BOTSTREAM_TOPIC_PREFIX": settings.topic_prefix})
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout.strip().splitlines()[0])
    assert line["key"] == "telegram:echo:42" and line["value"]["schema"] == "update"
    assert line["value"]["text"] == "hello data team" and line["headers"][CORRELATION_ID] == update["correlation_id"]


def test_partition_for_agrees_with_the_clients_partitioner(kafka_bootstrap: str) -> None:
    """Where the broker put records keyed by chat (a producer of the client layer, as ingest writes
    them) is where `partition_for` says each chat lives."""
    from confluent_kafka import Producer

    from botstream.core.kafka import producer_config
    from botstream.core.partitioning import partition_for

    settings = client_settings(kafka_bootstrap)
    topic = f"partitioning-{os.getpid()}-{time.time_ns()}"
    admin = admin_client(settings)
    admin.create_topics([NewTopic(topic, num_partitions=7, replication_factor=1)])[topic].result(30)
    producer = Producer(producer_config(settings))
    landed: dict[bytes, int] = {}
    keys = [f"telegram:bot:{i}".encode() for i in range(300)] + [b"slack:b:T1/C2", "whatsapp:w:\u00e9".encode()]

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        landed[msg.key()] = msg.partition()  # type: ignore[attr-defined]

    for key in keys:
        producer.produce(topic, key=key, value=b"x", on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert len(landed) == len(keys)
    assert {k: partition_for(k, 7) for k in keys} == landed
    assert len(set(landed.values())) == 7
