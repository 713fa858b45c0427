"""The whole pipeline over SASL_SSL, on its own embedded broker whose only client listener is SASL_SSL
(SCRAM users made by `kafka-storage format --add-scram`, a test CA generated at start): the topic
catalog, ingest, a streams worker and a sinks worker as real processes, and a signed webhook that
ends as a delivery in the sandbox. Every Kafka client there (confluent-kafka and Faust's aiokafka)
gets its security from the settings alone. Then the two mistakes an operator makes: a wrong password
and a CA that did not sign the broker's certificate are each reported in one line that names the
setting to fix."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from botstream.core.errors import ConfigError
from botstream.core.kafka import check_access
from botstream.core.secret import Secret
from botstream.core.settings import Settings
from botstream.ops.admin import apply_catalog
from botstream.ops.embedded_kafka import ClientSecurity, EmbeddedKafka, free_port, generate_test_tls
from botstream.sandbox import SandboxConfig, SandboxServer
from tests.integration.ingest.support import TG_SECRET, start_ingest, telegram
from tests.integration.sinks.support import scrape
from tests.processes import Child, ProcessGroup, wait_until

pytestmark = pytest.mark.kafka

BOT_TOKEN = "777001:sasl-ssl-echo-token"


@dataclass
class SecureCluster:
    kafka: EmbeddedKafka
    client: ClientSecurity
    settings: Settings  # a client of it: its own topic prefix, 2 partitions
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A process's environment: the broker's security settings and this test's topics only."""
        return {**self.client.env(), "BOTSTREAM_TOPIC_PREFIX": self.settings.topic_prefix,
                "BOTSTREAM_PARTITIONS": str(self.settings.partitions), "BOTSTREAM_LOG_LEVEL": "INFO", **extra}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    tmp = tmp_path_factory.mktemp("sasl-ssl")
    kafka = EmbeddedKafka(tmp / "kafka", port=None, heap="384m", tie_to_parent=True, sasl_ssl=True)
    kafka.start(timeout=120)
    try:
        client = kafka.client_security()
        assert client is not None
        settings = Settings.from_env(client.env(), topic_prefix=f"sec-{uuid.uuid4().hex[:6]}", partitions=2,
                                     data_dir=tmp / "data", cache_dir=Settings().cache_dir)
        report = apply_catalog(settings, client.bootstrap)  # the admin client over SASL_SSL
        assert report.ok, report.errors
        yield SecureCluster(kafka, client, settings, tmp)
    finally:
        kafka.stop()


def write_bots(path: Path, sandbox_url: str) -> Path:
    path.write_text(f"""
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "{TG_SECRET}"
token = "{BOT_TOKEN}"
api_base_url = "{sandbox_url}"
handler = "botstream.streams.examples.echo"
""")
    return path


def wait_owning(child: Child, port: int, metric: str) -> None:
    def ready() -> bool:
        if not child.alive():
            raise AssertionError(f"{child.name} exited:\n{child.output()[-3000:]}")
        try:
            return scrape(port).get(metric, 0) > 0
        except Exception:  # noqa: BLE001 - not listening yet
            return False

    wait_until(ready, timeout=120, interval=0.5, what=f"{child.name} owning partitions")


def test_a_signed_webhook_is_delivered_with_every_client_on_sasl_ssl(cluster: SecureCluster, tmp_path: Path) -> None:
    # the broker has no PLAINTEXT listener for clients: only what the settings configure can reach it
    props = (cluster.kafka.nodes[0].properties).read_text()
    assert f"listeners=SASL_SSL://127.0.0.1:{cluster.kafka.nodes[0].port}," in props
    assert "PLAINTEXT://" not in props.split("listeners=", 1)[1].split("\n", 1)[0].replace("CONTROLLER", "")

    processes = ProcessGroup(tmp_path / "logs")
    sandbox = SandboxServer(SandboxConfig()).start()
    try:
        bots = write_bots(tmp_path / "bots.toml", sandbox.base_url)
        ports = {"streams": free_port(), "sinks": free_port()}
        streams = processes.start("streams", ["-m", "botstream", "streams"], env=cluster.env(
            BOTSTREAM_BOTS_FILE=str(bots), BOTSTREAM_DATA_DIR=str(tmp_path / "data-streams"),
            BOTSTREAM_STREAMS_WEB_PORT=str(ports["streams"])))
        sinks = processes.start("sinks", ["-m", "botstream", "sinks"], env=cluster.env(
            BOTSTREAM_BOTS_FILE=str(bots), BOTSTREAM_DATA_DIR=str(tmp_path / "data-sinks"),
            BOTSTREAM_SINKS_WEB_PORT=str(ports["sinks"])))
        ingest = start_ingest(processes, cluster.settings, cluster.client.bootstrap, bots, **cluster.env(
            BOTSTREAM_BOTS_FILE=str(bots)))
        wait_owning(streams, ports["streams"], "botstream_streams_owned_partitions")
        wait_owning(sinks, ports["sinks"], "botstream_sinks_owned_partitions")

        body, headers = telegram(4242, 91001, "hello over sasl_ssl")
        r = ingest.post("/webhooks/telegram/echo", body, headers)
        assert r.status_code == 200, r.text

        def delivered() -> list[str]:
            return [d["text"] for d in sandbox.client.deliveries(platform="telegram", chat="91001")]

        got = wait_until(lambda: delivered() or None, timeout=90, interval=0.5, what="the echo reply in the sandbox")
        assert got == ["echo: hello over sasl_ssl"]
        password = cluster.client.password
        for child in (streams, sinks, ingest.child):
            assert child.alive(), child.output()[-3000:]
            assert password not in child.output(), f"the Kafka password is in the {child.name} log"
    finally:
        processes.stop_all()
        sandbox.stop()


def test_wrong_credentials_and_an_untrusted_ca_are_named_by_the_access_check(cluster: SecureCluster,
                                                                           tmp_path: Path) -> None:
    """What librdkafka reports for each mistake, as the one line a worker ends with (`worker_app` runs
    this check before Faust starts; Faust's aiokafka would retry either mistake for ever)."""
    assert check_access(cluster.settings) is True
    with pytest.raises(ConfigError) as wrong:
        check_access(dataclasses.replace(cluster.settings, kafka_sasl_password=Secret("not-the-password")))
    line = str(wrong.value)
    assert "\n" not in line and line.startswith("Kafka refused the credentials (SCRAM-SHA-256 as 'botstream'): "
                                                 "check BOTSTREAM_KAFKA_SASL_USERNAME and BOTSTREAM_KAFKA_SASL_PASSWORD")
    assert "not-the-password" not in line
    other = generate_test_tls(tmp_path / "other-ca", name="not the broker's CA")
    with pytest.raises(ConfigError) as untrusted:
        check_access(dataclasses.replace(cluster.settings, kafka_ssl_ca_file=other.ca_file))
    line = str(untrusted.value)
    assert "\n" not in line and line.startswith(
        f"the broker's TLS certificate is not trusted: check BOTSTREAM_KAFKA_SSL_CA_FILE ({other.ca_file})")


def test_another_launcher_on_the_same_home_sees_the_sasl_ssl_broker(cluster: SecureCluster) -> None:
    """`botstream kafka status` and the like describe a running broker from its state file."""
    other = EmbeddedKafka(cluster.kafka.home, port=None)
    assert other.sasl_ssl and other.status()["security_protocol"] == "SASL_SSL"
    assert other.start(timeout=30) == cluster.client.bootstrap  # already running: only its readiness is checked
    client = other.client_security()
    assert client is not None and client.password == cluster.client.password


def start_alone(cluster: SecureCluster, tmp_path: Path, command: str, **env: str) -> tuple[int, str, float]:
    """`botstream <command>` on its own, as an operator starts it; (exit code, output, seconds)."""
    bots = write_bots(tmp_path / "bots.toml", "http://127.0.0.1:9")
    full = {**os.environ, **cluster.env(BOTSTREAM_BOTS_FILE=str(bots), BOTSTREAM_DATA_DIR=str(tmp_path / "data"),
                                        BOTSTREAM_STREAMS_WEB_PORT=str(free_port()),
                                        BOTSTREAM_SINKS_WEB_PORT=str(free_port()),
                                        BOTSTREAM_INGEST_PORT=str(free_port())), **env}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "botstream", command], env=full, capture_output=True, text=True,
                         timeout=120)
    return out.returncode, out.stderr + out.stdout, time.monotonic() - started


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("botstream: error:")]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


@pytest.mark.parametrize("command", ["streams", "ingest"])
def test_a_wrong_password_ends_a_service_at_start_naming_the_setting(cluster: SecureCluster, tmp_path: Path,
                                                                    command: str) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    code, output, seconds = start_alone(cluster, tmp_path, command, BOTSTREAM_KAFKA_SASL_PASSWORD=f"file:{wrong}")
    line = error_line(output)
    assert code != 0 and seconds < 60
    assert "not-the-password" not in output and cluster.client.password not in output
    assert "BOTSTREAM_KAFKA_SASL_PASSWORD" in line and "BOTSTREAM_KAFKA_SASL_USERNAME" in line, line


def test_an_untrusted_ca_ends_a_worker_at_start_naming_the_setting(cluster: SecureCluster, tmp_path: Path) -> None:
    other = generate_test_tls(tmp_path / "other-ca", name="not the broker's CA")
    code, output, seconds = start_alone(cluster, tmp_path, "sinks", BOTSTREAM_KAFKA_SSL_CA_FILE=str(other.ca_file))
    line = error_line(output)
    assert code != 0 and seconds < 60
    assert "BOTSTREAM_KAFKA_SSL_CA_FILE" in line and str(other.ca_file) in line and "not trusted" in line, line
