"""The foundation on the real broker: client round trip, a real Faust worker, the launcher's edges."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from botstream.core.errors import BrokerStartError, JarResolveError, JavaMissingError, PortTakenError
from botstream.core.processes import pid_alive
from botstream.core.settings import REPO_ROOT, Settings
from botstream.ops.embedded_kafka import (
    EmbeddedKafka,
    ExternalKafka,
    ensure_jars,
    free_port,
    kafka_for,
)
from tests.processes import wait_until

pytestmark = pytest.mark.kafka


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0,
                alive=lambda: True) -> list:  # type: ignore[no-untyped-def,type-arg]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline and alive():
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None:
                    got.append(msg)
    finally:
        consumer.close()
    return got


def test_round_trip_keeps_keys_headers_and_per_key_order(kafka_bootstrap: str, make_topic) -> None:  # type: ignore[no-untyped-def]
    topic = make_topic("roundtrip", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(30):
        producer.produce(topic, key=f"chat-{i % 3}".encode(), value=f"{i}".encode(),
                         headers=[("correlation-id", f"c{i}".encode()), ("platform", b"telegram")])
    assert producer.flush(30) == 0
    msgs = consume_all(kafka_bootstrap, topic, 30)
    assert len(msgs) == 30
    by_key: dict[bytes, list[int]] = {}
    for m in msgs:
        headers = dict(m.headers())
        assert headers["platform"] == b"telegram"
        assert headers["correlation-id"] == b"c" + m.value()
        by_key.setdefault(m.key(), []).append(int(m.value()))
    assert set(by_key) == {b"chat-0", b"chat-1", b"chat-2"}
    for values in by_key.values():
        assert values == sorted(values) and len(values) == 10
    # one key, one partition
    partitions = {(m.key(), m.partition()) for m in msgs}
    assert len(partitions) == 3


def test_faust_worker_counts_in_rocksdb_table(kafka_bootstrap: str, make_topic, processes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, dst = make_topic("count-src", partitions=3), make_topic("count-dst", partitions=3)
    env = {"APP_ID": f"count-{uuid.uuid4().hex[:8]}", "BOOTSTRAP": kafka_bootstrap, "DATA_DIR": str(tmp_path / "faust"),
           "WEB_PORT": str(free_port()), "SRC": src, "DST": dst}
    worker = processes.start("faust-count", [str(Path(__file__).parent / "apps" / "count_app.py"), "worker",
                                             "-l", "warn"], env=env)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for i in range(15):
        producer.produce(src, key=b"a" if i < 10 else b"b", value=b"x")
    producer.flush(30)
    msgs = consume_all(kafka_bootstrap, dst, 15, timeout=90, alive=worker.alive)
    assert worker.alive(), worker.output()[-3000:]
    last = {m.key(): int(m.value()) for m in msgs}
    assert last == {b"a": 10, b"b": 5}, worker.output()[-3000:]
    # The table lives in RocksDB (rocksdict) under the worker's data dir.
    assert any(p.is_dir() and "counts" in p.name for p in (tmp_path / "faust").rglob("*")), \
        list((tmp_path / "faust").rglob("*"))[:20]
    assert worker.terminate() in (0, -15)


def test_port_taken_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        kafka = EmbeddedKafka(tmp_path / "k", port=port)
        started = time.monotonic()
        with pytest.raises(PortTakenError, match=f"port {port}"):
            kafka.start()
        assert time.monotonic() - started < 30
        assert not kafka.running()


def test_broker_dying_at_start_names_the_log_and_leaves_nothing(tmp_path: Path) -> None:
    kafka = EmbeddedKafka(tmp_path / "k", port=None, heap="2k")  # the JVM refuses this heap and exits
    with pytest.raises(BrokerStartError, match="stdout.log|server.log"):
        kafka.start(timeout=60)
    assert not kafka.running()


def test_missing_java_and_missing_maven_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(JavaMissingError, match="java"):
        EmbeddedKafka(tmp_path / "k", port=None).start()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JarResolveError, match="mvn not found"):
        ensure_jars(tmp_path / "empty-cache")


def test_unresolvable_jars_are_a_named_error(tmp_path: Path) -> None:
    pom = (REPO_ROOT / "deploy/kafka/pom.xml").read_text().replace(
        "<kafka.version>", "<kafka.version>0.0.0-does-not-exist").replace("</kafka.version>", "</kafka.version>", 1)
    bad = tmp_path / "pom.xml"
    bad.write_text(pom.split("<kafka.version>")[0] + "<kafka.version>0.0.0-nope</kafka.version>"
                   + pom.split("</kafka.version>", 1)[1])
    with pytest.raises(JarResolveError, match="maven.log"):
        ensure_jars(tmp_path / "cache", pom=bad)


def test_external_cluster_starts_nothing() -> None:
    kafka = kafka_for(Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}))
    assert isinstance(kafka, ExternalKafka)
    assert kafka.start() == "127.0.0.1:1"
    out = subprocess.run([sys.executable, "-m", "botstream", "kafka", "up"], capture_output=True, text=True,
                         env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, timeout=60)
    assert out.returncode == 0 and "nothing started" in out.stdout


def test_cli_up_status_down_leaves_no_process(tmp_path: Path) -> None:
    env = {**os.environ, "BOTSTREAM_DATA_DIR": str(tmp_path / "data"), "BOTSTREAM_KAFKA_HEAP": "384m"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "botstream", "kafka", *args], capture_output=True,
                              text=True, env=env, timeout=180)

    up = cli("up", "--free-port")
    assert up.returncode == 0, up.stderr
    assert "ready at 127.0.0.1:" in up.stdout
    status = cli("status")
    assert status.returncode == 0 and '"running": true' in status.stdout
    pid = int((tmp_path / "data/kafka/node-1/broker.pid").read_text())
    assert pid_alive(pid)
    down = cli("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    wait_until(lambda: not pid_alive(pid), timeout=30, what="broker exit")
    assert cli("status").returncode == 3
