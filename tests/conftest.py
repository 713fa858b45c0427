"""Test harness: one real Kafka broker per test session, unique names per test.

The broker is the project's own embedded KRaft broker (botstream.ops.embedded_kafka), started lazily the
first time a test asks for `kafka_bootstrap` and stopped when the session ends; it is tied to this
process, so even a killed pytest leaves no broker behind. With `KAFKA_BOOTSTRAP_SERVERS` set, that
cluster is used and nothing is started.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from botstream.core.settings import Settings
from tests.processes import ProcessGroup


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from botstream.ops.embedded_kafka import EmbeddedKafka

    kafka = EmbeddedKafka(tmp_path_factory.mktemp("kafka"), port=None, heap="384m", tie_to_parent=True)
    bootstrap = kafka.start(timeout=120)
    try:
        yield bootstrap
    finally:
        kafka.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """unique("orders") -> "orders-3f2a9c1d": topic, group and app names no other test shares."""
    return lambda base: f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_topic(kafka_bootstrap: str, unique: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from botstream.core.kafka import admin_config
    from tests.pipeline import client_settings

    admin = AdminClient(admin_config(client_settings(kafka_bootstrap)))
    created: list[str] = []

    def make(base: str = "t", partitions: int = 3, config: dict[str, str] | None = None) -> str:
        name = unique(base)
        admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(30)
        created.append(name)
        return name

    yield make
    if created:
        for fut in admin.delete_topics(created, operation_timeout=30).values():
            try:
                fut.result(30)
            except Exception:  # noqa: BLE001 - best effort clean-up of a uuid topic
                pass


@pytest.fixture
def test_settings(kafka_bootstrap: str, tmp_path: Path, unique: Callable[[str], str]) -> Settings:
    """Settings of an isolated pipeline: its own topic prefix and data dir on the session broker."""
    return Settings.from_env(
        {}, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=unique("bs"), partitions=4,
        data_dir=tmp_path / "data", cache_dir=Settings().cache_dir,
    )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    """Child processes a test starts; all of them are stopped (by pid) when the test ends."""
    group = ProcessGroup(tmp_path / "logs")
    try:
        yield group
    finally:
        group.stop_all()
