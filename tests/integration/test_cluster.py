"""Three KRaft nodes on one host (RF 3, min ISR 2): one node killed by pid, writes go on, it rejoins."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from botstream.core.processes import pid_alive
from botstream.ops.embedded_kafka import EmbeddedKafka
from tests.processes import wait_until

pytestmark = pytest.mark.kafka


def test_three_node_cluster_survives_one_node_killed(tmp_path: Path) -> None:
    cluster = EmbeddedKafka(tmp_path / "cluster", port=None, nodes=3, heap="256m", tie_to_parent=True)
    try:
        bootstrap = cluster.start(timeout=180)
        assert len(bootstrap.split(",")) == 3
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = f"rf3-{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic].result(60)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "message.timeout.ms": 30000})
        delivered: list[int] = []

        def produce(n: int) -> None:
            for i in range(n):
                producer.produce(topic, key=str(i).encode(), value=b"v",
                                 on_delivery=lambda err, msg: delivered.append(0 if err else 1))
            producer.flush(60)

        produce(100)
        victim = cluster.nodes[1]
        pid = victim.pid()
        assert pid is not None
        cluster.stop_node(victim.node_id, kill=True)
        assert not pid_alive(pid)
        started = time.monotonic()
        produce(100)  # two of three replicas left: min ISR 2 still met
        assert sum(delivered) == 200, f"{200 - sum(delivered)} records not acknowledged with one node down"
        cluster.start_node(victim.node_id)
        assert victim.running()
        md = wait_until(lambda: (m := admin.list_topics(topic, timeout=10)) and len(m.brokers) == 3 and m,
                        timeout=90, what="the node to rejoin")
        print(f"\nthree-node cluster: node {victim.node_id} killed and back in {time.monotonic() - started:.1f}s, "
              f"{len(md.brokers)} brokers, 200/200 records acknowledged")
    finally:
        cluster.stop()
    assert not cluster.running()
