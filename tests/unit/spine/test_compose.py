"""docker-compose.yml must parse and stay in step with the embedded broker (no engine runs here)."""

from __future__ import annotations

import yaml

from botstream.core.settings import REPO_ROOT
from botstream.ops.embedded_kafka import kafka_version


def test_compose_parses_and_kafka_matches_the_launcher_major_version() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    kafka = services["kafka"]
    image, tag = kafka["image"].split(":")
    assert image == "apache/kafka"
    assert tag.split(".")[0] == kafka_version().split(".")[0]
    assert "healthcheck" in kafka and kafka["restart"]
    assert "9092:9092" in kafka["ports"]
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == 0
    for name, svc in services.items():
        assert "restart" in svc, f"{name} has no restart policy"
        if svc["restart"] == "no":  # a one-shot job: the services needing it wait for its success instead
            assert any((s.get("depends_on") or {}).get(name, {}).get("condition") == "service_completed_successfully"
                       for s in services.values()), f"{name} is one-shot but nothing waits for it"
        else:
            assert "healthcheck" in svc, f"{name} has no health check"
