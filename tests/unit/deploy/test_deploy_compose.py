"""docker-compose.yml, checked without a Docker engine: every service runs a real botstream command,
is health-checked and restarted, streams can be scaled, and the wiring (settings, ports, bots file,
Prometheus targets) agrees with the code."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from botstream.core.bots import load_bots_file
from botstream.core.settings import REPO_ROOT, Settings
from tests.unit.deploy.support import (
    PENDING_SETTINGS,
    PROMETHEUS_DIR,
    load_compose,
    parse_botstream_args,
    settings_env_names,
)

COMPOSE = load_compose()
SERVICES: dict[str, Any] = COMPOSE["services"]
BOTSTREAM_SERVICES = {name: svc for name, svc in SERVICES.items() if svc.get("build") or
                      str(svc.get("image", "")).startswith("botstream")}
ONE_SHOT = {name for name, svc in SERVICES.items() if svc.get("restart") == "no"}


def test_the_pipeline_is_all_there() -> None:
    assert {"kafka", "schema-registry", "topics", "ingest", "streams", "sinks", "sandbox", "prometheus",
            "grafana"} <= set(SERVICES)
    assert {"topics", "ingest", "streams", "sinks", "sandbox"} <= set(BOTSTREAM_SERVICES)


@pytest.mark.parametrize("name", sorted(BOTSTREAM_SERVICES))
def test_command_is_a_real_botstream_command(name: str) -> None:
    command = BOTSTREAM_SERVICES[name]["command"]
    assert isinstance(command, list), f"{name}: use the exec form so arguments are not re-split by a shell"
    args = parse_botstream_args(command)
    assert args.command == name.split("-")[0]  # lag-exporter runs `lag`


def test_services_run_the_commands_their_names_say() -> None:
    parsed = {name: parse_botstream_args(svc["command"]) for name, svc in BOTSTREAM_SERVICES.items()}
    assert (parsed["topics"].command, parsed["topics"].action) == ("topics", "apply")
    assert parsed["sandbox"].host == "0.0.0.0"
    assert parsed["lag-exporter"].serve and parsed["lag-exporter"].host == "0.0.0.0"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_health_check_and_a_restart_policy(name: str) -> None:
    svc = SERVICES[name]
    assert svc.get("restart") in {"no", "always", "on-failure", "unless-stopped"}, f"{name}: restart policy"
    if name in ONE_SHOT:
        # A job that exits is not "healthy"; what counts is that the services needing it wait for
        # its successful completion.
        waiting = [other for other, s in SERVICES.items()
                   if (s.get("depends_on") or {}).get(name, {}).get("condition") == "service_completed_successfully"]
        assert waiting, f"{name} is one-shot but nothing waits for it to complete"
        return
    check = svc.get("healthcheck")
    assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_the_topics_job_gates_the_pipeline() -> None:
    assert ONE_SHOT == {"topics"}
    for name in ("ingest", "streams", "sinks"):
        deps = SERVICES[name]["depends_on"]
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["schema-registry"]["condition"] == "service_healthy"


def test_streams_can_be_scaled() -> None:
    streams = SERVICES["streams"]
    assert "container_name" not in streams
    assert not streams.get("ports"), "a fixed host port would make the second replica fail to start"
    data_dir = streams["environment"]["BOTSTREAM_DATA_DIR"]
    # Each replica gets its own state: an anonymous volume (no "source:") or a tmpfs at the data dir.
    anonymous = [v for v in streams.get("volumes", []) if isinstance(v, str) and ":" not in v]
    tmpfs = streams.get("tmpfs", [])
    assert data_dir in anonymous or data_dir in tmpfs, "streams replicas need a data dir of their own"


def test_environment_uses_real_settings_names() -> None:
    known = settings_env_names() | PENDING_SETTINGS
    for name, svc in BOTSTREAM_SERVICES.items():
        env = svc["environment"]
        unknown = {k for k in env if k not in known}
        assert not unknown, f"{name}: {unknown} are not settings (botstream/settings.py)"
        settings = Settings.from_env({k: str(v) for k, v in env.items() if k not in PENDING_SETTINGS})
        assert settings.kafka_bootstrap_servers == "kafka:29092", "the broker's in-network listener"
        assert urlparse(settings.schema_registry_url or "").hostname == "schema-registry"
        assert env.get("BOTSTREAM_WEB_HOST") == "0.0.0.0", f"{name}: Faust web must listen beyond loopback"
    assert BOTSTREAM_SERVICES["ingest"]["environment"]["BOTSTREAM_INGEST_HOST"] == "0.0.0.0"


def test_pending_settings_are_still_pending() -> None:
    """When a pending setting lands in botstream/settings.py, move it out of PENDING_SETTINGS."""
    assert not PENDING_SETTINGS & settings_env_names()


def test_the_kafka_listener_the_services_use_exists() -> None:
    listeners = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:29092" in listeners.split(",")
    registry = SERVICES["schema-registry"]["environment"]
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == "PLAINTEXT://kafka:29092"
    assert registry["SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL"] == "FULL_TRANSITIVE"  # schemas/EVOLUTION.md


def test_bots_file_is_mounted_and_points_at_the_sandbox() -> None:
    for name, svc in BOTSTREAM_SERVICES.items():
        target = svc["environment"]["BOTSTREAM_BOTS_FILE"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", []) if v.count(":") >= 1}
        assert target in mounts, f"{name}: {target} is not mounted"
        source = REPO_ROOT / mounts[target]
        assert source == REPO_ROOT / "deploy" / "bots.compose.toml"
    bots = load_bots_file(REPO_ROOT / "deploy" / "bots.compose.toml")
    sandbox_port = Settings().sandbox_port
    assert bots and all(b.api_base_url == f"http://sandbox:{sandbox_port}" for b in bots.values())
    example = tomllib.loads((REPO_ROOT / "deploy" / "bots.example.toml").read_text())
    compose = _sandbox_as_localhost(tomllib.loads((REPO_ROOT / "deploy" / "bots.compose.toml").read_text()))
    strip = [{k: v for k, v in b.items() if k != "api_base_url"} for b in example["bots"]]
    assert strip == [{k: v for k, v in b.items() if k != "api_base_url"} for b in compose["bots"]], \
        "bots.compose.toml should be bots.example.toml with the sandbox's hostname"


def _sandbox_as_localhost(doc: dict[str, Any]) -> dict[str, Any]:
    """Integrations reach the sandbox's upstream by URL too: compare them with the hostname swapped."""
    return json.loads(json.dumps(doc).replace(f"http://sandbox:{Settings().sandbox_port}/",
                                              f"http://127.0.0.1:{Settings().sandbox_port}/"))


def test_health_checks_probe_the_ports_the_services_listen_on() -> None:
    defaults = Settings()
    expected = {"ingest": f":{defaults.ingest_port}/readyz", "streams": f":{defaults.streams_web_port}/metrics",
                "sinks": f":{defaults.sinks_web_port}/metrics", "sandbox": f":{defaults.sandbox_port}/_sandbox/healthz"}
    for name, fragment in expected.items():
        assert fragment in " ".join(SERVICES[name]["healthcheck"]["test"]), name


def test_prometheus_scrapes_every_service_with_metrics() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        hosts = targets.setdefault(job["job_name"], set())
        for sc in job.get("static_configs", []):
            hosts.update(sc["targets"])
        for sd in job.get("dns_sd_configs", []):
            hosts.update(f"{n}:{sd['port']}" for n in sd["names"])
    defaults = Settings()
    lag_port = parse_botstream_args(SERVICES["lag-exporter"]["command"]).port
    assert targets["ingest"] == {f"ingest:{defaults.ingest_port}"}
    assert targets["streams"] == {f"streams:{defaults.streams_web_port}"}
    assert targets["sinks"] == {f"sinks:{defaults.sinks_web_port}"}
    assert targets["lag"] == {f"lag-exporter:{lag_port}"}
    # streams is scaled: a static target would hit one replica through the DNS round robin
    assert [job for job in config["scrape_configs"] if job["job_name"] == "streams"][0]["dns_sd_configs"]
    mounts = SERVICES["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_grafana_is_provisioned_from_the_repository() -> None:
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert Path(REPO_ROOT / mounts["/etc/grafana/provisioning"]) == REPO_ROOT / "deploy" / "grafana" / "provisioning"
    provider = yaml.safe_load((REPO_ROOT / "deploy/grafana/provisioning/dashboards/botstream.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert Path(REPO_ROOT / mounts[path]) == REPO_ROOT / "deploy" / "grafana" / "dashboards"
