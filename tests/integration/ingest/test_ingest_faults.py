"""Durable acknowledgement under faults: a broker outage answers 503 + Retry-After and recovers by
itself; a kill -9 under load loses no update that was answered 2xx; a record the topic refuses as too
large is a 503, not a 2xx or a 4xx; N workers share one port."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from botstream.core.settings import Settings
from botstream.ops.admin import admin_client, apply_catalog
from botstream.ops.embedded_kafka import EmbeddedKafka
from tests.integration.ingest.support import (
    WA_SECRET,
    end_offsets,
    hub,
    start_ingest,
    telegram,
    whatsapp_batch,
    write_bots,
)
from tests.pipeline import TopicReader
from tests.processes import ProcessGroup, wait_until

pytestmark = pytest.mark.kafka


def _update_ids_on(bootstrap: str, topic: str, wanted: set[str], timeout: float = 60.0) -> set[str]:
    """The update ids of `wanted` that are on the topic, reading until all are found or the timeout."""
    reader = TopicReader(bootstrap, topic, "update")
    try:
        seen: set[str] = set()

        def all_found() -> bool:
            reader.poll(0.5)
            seen.update(u["update_id"] for _, u, _ in reader.items)
            return wanted <= seen

        try:
            wait_until(all_found, timeout=timeout, interval=0, what="acknowledged updates on the topic")
        except AssertionError:
            pass  # the caller's assertion names what is missing
        return wanted & seen
    finally:
        reader.close()


def test_broker_outage_is_503_with_retry_after_and_recovers_without_restart(
        tmp_path: Path, test_settings: Settings, processes: ProcessGroup) -> None:
    kafka = EmbeddedKafka(tmp_path / "outage-kafka", port=None, heap="384m", tie_to_parent=True)
    bootstrap = kafka.start(timeout=120)
    try:
        settings = dataclasses.replace(test_settings, kafka_bootstrap_servers=bootstrap)
        assert apply_catalog(settings, bootstrap).ok
        ingest = start_ingest(processes, settings, bootstrap, write_bots(tmp_path / "bots.toml"),
                              BOTSTREAM_ACK_TIMEOUT_S="1")
        acked: set[str] = set()

        def send(update_id: int) -> httpx.Response:
            body, headers = telegram(update_id, chat_id=update_id % 7 + 1)
            response = ingest.post("/webhooks/telegram/tg", body, headers)
            if response.status_code == 200:
                acked.add(str(update_id))
            return response

        assert send(1).status_code == 200
        kafka.stop()
        for update_id in (2, 3, 4):
            response = send(update_id)
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["error"] in {"ack_timeout", "delivery_failed"}
        wait_until(lambda: httpx.get(ingest.url + "/readyz").status_code == 503, timeout=30,
                   what="/readyz to report the outage")
        assert httpx.get(ingest.url + "/healthz").status_code == 200  # down broker: not ready, still alive
        assert acked == {"1"}

        kafka.start(timeout=120)
        next_id = iter(range(100, 10_000))
        wait_until(lambda: send(next(next_id)).status_code == 200, timeout=60, interval=0.2,
                   what="a 2xx after the broker came back")
        wait_until(lambda: httpx.get(ingest.url + "/readyz").status_code == 200, timeout=30, what="ready again")
        assert ingest.child.alive()  # the same process recovered on its own
        assert _update_ids_on(bootstrap, settings.topic("updates"), acked) == acked
    finally:
        kafka.stop()


async def test_kill_9_under_load_loses_no_acknowledged_update(
        tmp_path: Path, test_settings: Settings, kafka_bootstrap: str, processes: ProcessGroup) -> None:
    assert apply_catalog(test_settings, kafka_bootstrap).ok
    ingest = start_ingest(processes, test_settings, kafka_bootstrap, write_bots(tmp_path / "bots.toml"))
    clients, per_client, kill_after = 8, 60, 150
    acked: set[str] = set()
    failed_after_kill = 0

    async def client(n: int) -> None:
        nonlocal failed_after_kill
        async with httpx.AsyncClient(base_url=ingest.url, timeout=10) as http:
            for i in range(per_client):
                update_id = n * 1000 + i
                body, headers = telegram(update_id, chat_id=update_id % 50 + 1)
                try:
                    response = await http.post("/webhooks/telegram/tg", content=body, headers=headers)
                except httpx.TransportError:
                    failed_after_kill += 1
                    return
                if response.status_code == 200:
                    acked.add(str(update_id))
                if len(acked) >= kill_after and ingest.child.alive():
                    ingest.child.kill9()

    await asyncio.gather(*(client(n) for n in range(clients)))
    assert not ingest.child.alive()
    assert kill_after <= len(acked) < clients * per_client and failed_after_kill > 0, "the kill was not mid-load"
    topic = test_settings.topic("updates")
    found = await asyncio.to_thread(_update_ids_on, kafka_bootstrap, topic, acked)
    assert acked - found == set(), f"{len(acked - found)} acknowledged update(s) missing from {topic}"


def test_workers_share_one_port_and_their_metrics(
        tmp_path: Path, test_settings: Settings, kafka_bootstrap: str, processes: ProcessGroup) -> None:
    assert apply_catalog(test_settings, kafka_bootstrap).ok
    ingest = start_ingest(processes, test_settings, kafka_bootstrap, write_bots(tmp_path / "bots.toml"),
                          args=("--workers", "2"))
    children = Path(f"/proc/{ingest.child.pid}/task/{ingest.child.pid}/children").read_text().split()
    workers = [pid for pid in children
               if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 2
    total = 40
    with httpx.Client(base_url=ingest.url, timeout=10) as http:
        for update_id in range(total):  # new connections: the kernel spreads them over both workers
            body, headers = telegram(update_id, chat_id=update_id + 1)
            assert http.post("/webhooks/telegram/tg", content=body,
                             headers={**headers, "connection": "close"}).status_code == 200
    assert sum(end_offsets(kafka_bootstrap, test_settings.topic("updates"), test_settings.partitions)) == total
    metrics = httpx.get(ingest.url + "/metrics").text
    line = next(ln for ln in metrics.splitlines()
                if ln.startswith('botstream_ingest_records_produced_total{bot="tg",platform="telegram"}'))
    assert float(line.rsplit(" ", 1)[1]) == total  # summed over both workers, whichever was scraped


def test_record_refused_as_too_large_by_the_topic_is_503_and_the_producer_stays_ready(
        tmp_path: Path, test_settings: Settings, kafka_bootstrap: str, processes: ProcessGroup) -> None:
    """The sender did nothing wrong (WhatsApp allows 3 MB), so a 4xx would make it drop a valid update;
    a 503 keeps it redelivering until an operator raises the topic's limit."""
    assert apply_catalog(test_settings, kafka_bootstrap).ok
    topic = test_settings.topic("updates")
    admin = admin_client(test_settings, kafka_bootstrap)
    limit = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "65536", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([limit])[limit].result(30)
    ingest = start_ingest(processes, test_settings, kafka_bootstrap, write_bots(tmp_path / "bots.toml"))
    payload = whatsapp_batch(("wamid.big", "4915550001"))
    payload["attachment_dump"] = os.urandom(100_000).hex()  # incompressible, within every HTTP limit
    body, headers = hub(payload, WA_SECRET)
    response = ingest.post("/webhooks/whatsapp/wa", body, headers)
    assert (response.status_code, response.json()) == (503, {"error": "record_too_large"})
    assert "retry-after" in response.headers
    body, headers = telegram(1, chat_id=5)
    assert ingest.post("/webhooks/telegram/tg", body, headers).status_code == 200
    assert httpx.get(ingest.url + "/readyz").status_code == 200
    assert sum(end_offsets(kafka_bootstrap, topic, test_settings.partitions)) == 1
