"""Embedded Apache Kafka: a real KRaft broker (or three) run from jars resolved through Maven Central.

There is no Docker engine on the machines this project is developed and tested on, so the project
runs Kafka itself: `deploy/kafka/pom.xml` names the broker and its log binding, Maven copies the
runtime classpath into the cache folder once, and this module writes the configs, formats storage,
starts `kafka.Kafka` and judges readiness by a real metadata request.

Processes are ours to stop: every node's pid is recorded in a state file next to its data, `stop()`
sends SIGTERM then SIGKILL after a grace period, and nodes started with `tie_to_parent=True` (tests,
`make run`) are also killed by the kernel if the starting process dies.

With `sasl_ssl=True` the broker's client listener is SASL_SSL (SCRAM-SHA-256 and -512) instead of
PLAINTEXT: a test CA and a broker certificate for 127.0.0.1 / localhost are generated at start (PEM
files under `<home>/security/`), the broker's own user and a client user are created by Kafka's own
`kafka-storage format --add-scram`, brokers talk to each other over that listener too, the KRaft
controller listener stays PLAINTEXT on loopback, and `client_security()` says what a client needs
(bootstrap, CA file, mechanism, user, password file; `.env()` as botstream's settings).

When `KAFKA_BOOTSTRAP_SERVERS` is set, `kafka_for()` returns an `ExternalKafka` that starts nothing.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botstream.core.errors import (
    BrokerStartError,
    JarResolveError,
    JavaMissingError,
    LauncherError,
    PortTakenError,
)
from botstream.core.processes import die_with_parent, pid_alive
from botstream.core.settings import REPO_ROOT, Settings

POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
MIN_JAVA = 17

LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="${sys:kafka.logs.dir}/server.log"
                 filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="50 MB"/>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="INFO"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in the pom (the single place it is written)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not node.text:
        raise LauncherError(f"{pom}: no <kafka.version> property")
    return node.text.strip()


def java_major(java: str = "java") -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise JavaMissingError(f"java not found on PATH (Kafka needs Java {MIN_JAVA}+)") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise JavaMissingError(f"cannot read the Java version from `{java} -version`")
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else (shutil.which("java") or "java")
    major = java_major(java)
    if major < MIN_JAVA:
        raise JavaMissingError(f"{java} is Java {major}; Kafka 4.x needs Java {MIN_JAVA}+")
    return java


def ensure_jars(cache_dir: Path, pom: Path = POM, log: Path | None = None) -> Path:
    """The folder holding the broker's runtime classpath; runs Maven only when it is not there yet."""
    version = kafka_version(pom)
    libs = cache_dir / "kafka" / version / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolveError("mvn not found on PATH (needed once to fetch the Kafka jars)")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log = log or cache_dir / "kafka" / version / "maven.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
    with log.open("wb") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
        raise JarResolveError(f"Maven could not resolve Kafka {version} (exit {rc}); see {log}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(version)
    return libs


def random_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints: a base64url UUID, never starting with '-' (Kafka's own
    rule, as a leading '-' reads as an option on command lines), without starting a JVM for it."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _is_our_broker(pid: int, properties: Path) -> bool:
    """Guard against pid reuse: only signal a process whose command line names our config."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(properties).encode() in cmdline


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    home: Path

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid) and _is_our_broker(pid, self.properties)


# -- SASL_SSL: a test CA, the broker's certificate, SCRAM users ----------------------------------------

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
BROKER_USER = "broker"  # the brokers' own user (inter-broker connections)
CLIENT_USER = "botstream"  # the user clients are given
TLS_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test CA and a certificate it signed (for 127.0.0.1 and localhost)."""

    ca_file: Path  # the CA certificate: what clients trust
    cert_file: Path  # the certificate, then the CA's (the chain a server presents)
    key_file: Path  # the certificate's private key, PKCS#8, unencrypted (mode 0600)

    def expires(self) -> datetime:
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.cert_file.read_bytes()).not_valid_after_utc


def generate_test_tls(directory: Path, *, name: str = "botstream test CA", days: int = TLS_DAYS) -> TlsFiles:
    """A fresh CA and a server certificate it signs for 127.0.0.1 and localhost (EC P-256, SHA-256,
    the extensions strict verifiers ask for), written as PEM under `directory`. For tests and local
    brokers only: the CA's key is not kept, so nothing else can ever be signed with it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def usage(**on: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"),
                              False)
        return x509.KeyUsage(**{**flags, **on})

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key.pem")
    pem = serialization.Encoding.PEM
    files.ca_file.write_bytes(ca_cert.public_bytes(pem))
    files.cert_file.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write_private(files.key_file, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return files


def _write_private(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@dataclass(frozen=True)
class ClientSecurity:
    """What a client needs to reach an embedded broker's SASL_SSL listener."""

    bootstrap: str
    ca_file: Path
    username: str
    password_file: Path  # the password alone (mode 0600); botstream reads it as file:PATH
    mechanism: str = "SCRAM-SHA-256"
    protocol: str = "SASL_SSL"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def env(self) -> dict[str, str]:
        """botstream's settings for it, as environment variables (the password by file reference)."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BOTSTREAM_KAFKA_SECURITY_PROTOCOL": self.protocol,
                "BOTSTREAM_KAFKA_SASL_MECHANISM": self.mechanism, "BOTSTREAM_KAFKA_SASL_USERNAME": self.username,
                "BOTSTREAM_KAFKA_SASL_PASSWORD": f"file:{self.password_file}",
                "BOTSTREAM_KAFKA_SSL_CA_FILE": str(self.ca_file)}

    def librdkafka(self) -> dict[str, str]:
        """The same as confluent-kafka (librdkafka) configuration."""
        return {"bootstrap.servers": self.bootstrap, "security.protocol": self.protocol,
                "sasl.mechanisms": self.mechanism, "sasl.username": self.username, "sasl.password": self.password,
                "ssl.ca.location": str(self.ca_file)}


def _properties_value(text: str) -> str:
    """`text` as one java.util.Properties value (Kafka reads server.properties with it)."""
    return text.strip().replace("\\", "\\\\").replace("\n", "\\n")


def server_properties(node: Node, nodes: list[Node], sasl_ssl: dict[str, Any] | None = None) -> str:
    """The node's server.properties. `sasl_ssl` (the launcher's) has `tls` (TlsFiles) and
    `broker_password`; without it the client listener is PLAINTEXT."""
    single = len(nodes) == 1
    rf = 1 if single else min(3, len(nodes))
    isr = 1 if single else 2
    client = "SASL_SSL" if sasl_ssl else "PLAINTEXT"
    lines = [
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"listeners={client}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        f"advertised.listeners={client}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        f"listener.security.protocol.map={client}:{client},CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        f"inter.broker.listener.name={client}",
        f"log.dirs={node.home / 'data'}",
        "num.partitions=1",
        f"default.replication.factor={rf}",
        f"min.insync.replicas={isr}",
        f"offsets.topic.replication.factor={rf}",
        "offsets.topic.num.partitions=6",
        f"transaction.state.log.replication.factor={rf}",
        f"transaction.state.log.min.isr={isr}",
        "transaction.state.log.num.partitions=6",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={isr}",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "log.retention.check.interval.ms=60000",
        "num.network.threads=2",
        "num.io.threads=4",
        "delete.topic.enable=true",
    ]
    if single:
        lines.append(f"controller.quorum.bootstrap.servers=127.0.0.1:{node.controller_port}")
    else:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
        lines.append(f"controller.quorum.voters={voters}")
    if sasl_ssl:
        tls: TlsFiles = sasl_ssl["tls"]
        jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{BROKER_USER}" password="{sasl_ssl["broker_password"]}";')
        lines += [
            f"sasl.enabled.mechanisms={','.join(SCRAM_MECHANISMS)}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISMS[0]}",
            *(f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config={jaas}" for m in SCRAM_MECHANISMS),
            # PEM key and chain given inline: a PEM key *file* would need an encrypted key and its password
            "ssl.keystore.type=PEM",
            f"ssl.keystore.certificate.chain={_properties_value(tls.cert_file.read_text())}",
            f"ssl.keystore.key={_properties_value(tls.key_file.read_text())}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca_file}",
            "ssl.client.auth=none",
        ]
    return "\n".join(lines) + "\n"


class EmbeddedKafka:
    """A single-node (or `nodes=3`) KRaft cluster on 127.0.0.1, owned by this process.

    >>> kafka = EmbeddedKafka(home=Path(".botstream/kafka"), port=9092)
    >>> bootstrap = kafka.start()      # downloads jars once, formats, starts, waits for metadata
    >>> kafka.stop()                   # SIGTERM, then SIGKILL after the grace period
    """

    def __init__(self, home: Path, *, port: int | None = 9092, nodes: int = 1, heap: str = "512m",
                 cache_dir: Path | None = None, pick_free_port: bool = False, tie_to_parent: bool = False,
                 pom: Path = POM, sasl_ssl: bool = False) -> None:
        self.home = home.resolve()
        self.cache_dir = (cache_dir or Settings().cache_dir).resolve()
        self.heap = heap
        self.tie_to_parent = tie_to_parent
        self.sasl_ssl = sasl_ssl
        self.pom = pom
        self.version = kafka_version(pom)
        self.nodes = self._plan_nodes(port, nodes, pick_free_port)

    # -- layout ------------------------------------------------------------------------------------
    def _plan_nodes(self, port: int | None, count: int, pick_free_port: bool) -> list[Node]:
        state = self._read_state()
        if state and all(pid_alive(p) for p in state.get("pids", [])) and state.get("nodes"):
            # Describe what is already running here, so status/stop work from another process.
            self.sasl_ssl = self.sasl_ssl or state.get("security_protocol") == "SASL_SSL"
            return [Node(n["node_id"], n["port"], n["controller_port"], Path(n["home"])) for n in state["nodes"]]
        planned: list[Node] = []
        used: set[int] = set()
        for i in range(count):
            want = None if port is None or pick_free_port else port + i
            p = want if want is not None else self._fresh_port(used)
            used.add(p)
            c = self._fresh_port(used) if port is None or pick_free_port else p + 100
            used.add(c)
            planned.append(Node(i + 1, p, c, self.home / f"node-{i + 1}"))
        return planned

    @staticmethod
    def _fresh_port(used: set[int]) -> int:
        while True:
            p = free_port()
            if p not in used:
                return p

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"

    @property
    def security_dir(self) -> Path:
        return self.home / "security"

    def _tls_files(self) -> TlsFiles:
        d = self.security_dir
        return TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key.pem")

    def _password(self, user: str) -> str:
        """The SCRAM password of `user`, made once per home (the users live in the formatted metadata)."""
        path = self.security_dir / f"{user}.password"
        if not path.exists():
            self.security_dir.mkdir(parents=True, exist_ok=True)
            _write_private(path, secrets.token_hex(16).encode())
        return path.read_text().strip()

    def _prepare_sasl_ssl(self) -> dict[str, Any]:
        """The test CA and broker certificate (made again when missing or within a day of expiring) and
        the SCRAM passwords, for server.properties and the format."""
        tls = self._tls_files()
        fresh = all(p.exists() for p in (tls.ca_file, tls.cert_file, tls.key_file))
        if not fresh or tls.expires() < datetime.now(UTC) + timedelta(days=1):
            tls = generate_test_tls(self.security_dir, name=f"botstream test CA ({self.home.name})")
        return {"tls": tls, "broker_password": self._password(BROKER_USER),
                "client_password": self._password(CLIENT_USER)}

    def client_security(self, mechanism: str = SCRAM_MECHANISMS[0]) -> ClientSecurity | None:
        """What a client needs for the SASL_SSL listener (None when the broker is PLAINTEXT)."""
        if not self.sasl_ssl:
            return None
        if mechanism not in SCRAM_MECHANISMS:
            raise LauncherError(f"the embedded broker's users have {' and '.join(SCRAM_MECHANISMS)}, not {mechanism}")
        self._password(CLIENT_USER)
        return ClientSecurity(self.bootstrap_servers, self._tls_files().ca_file, CLIENT_USER,
                              self.security_dir / f"{CLIENT_USER}.password", mechanism)

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _write_state(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        state = {
            "version": self.version, "bootstrap": self.bootstrap_servers,
            "security_protocol": "SASL_SSL" if self.sasl_ssl else "PLAINTEXT",
            "pids": [n.pid() for n in self.nodes if n.pid()],
            "nodes": [{"node_id": n.node_id, "port": n.port, "controller_port": n.controller_port,
                       "home": str(n.home)} for n in self.nodes],
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def log_files(self) -> list[Path]:
        return [n.log_file for n in self.nodes]

    # -- lifecycle ---------------------------------------------------------------------------------
    def running(self) -> bool:
        return any(n.running() for n in self.nodes)

    def start(self, timeout: float = 90.0) -> str:
        """Start every node and return the bootstrap servers once a metadata request succeeds."""
        if self.running() and all(n.running() for n in self.nodes):
            self.wait_ready(timeout)
            return self.bootstrap_servers
        java = find_java()
        libs = ensure_jars(self.cache_dir, self.pom)
        for node in self.nodes:
            for p in (node.port, node.controller_port):
                if not port_is_free(p):
                    raise PortTakenError(
                        f"port {p} on 127.0.0.1 is taken (node {node.node_id}); choose another port "
                        f"(--port) or ask for a free one (--free-port)")
        self._format(java, libs)
        try:
            for node in self.nodes:
                self._spawn(java, libs, node)
            self._write_state()
            self.wait_ready(timeout)
        except BaseException:
            self.stop(grace=5)
            raise
        return self.bootstrap_servers

    def _format(self, java: str, libs: Path) -> None:
        cluster_id = self._cluster_id(java, libs)
        security = self._prepare_sasl_ssl() if self.sasl_ssl else None
        for node in self.nodes:
            node.home.mkdir(parents=True, exist_ok=True)
            node.log_dir.mkdir(parents=True, exist_ok=True)
            # holds the broker's key and password when SASL_SSL: readable by this user only
            _write_private(node.properties, server_properties(node, self.nodes, security).encode())
            (node.home / "log4j2.xml").write_text(LOG4J2_XML)
            if (node.home / "data" / "meta.properties").exists():
                continue
            cmd = [java, "-Xmx256m", "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
                   f"--cluster-id={cluster_id}", "-c", str(node.properties), "-g"]
            if len(self.nodes) == 1:
                cmd.append("--standalone")
            if security is not None:  # the SCRAM users, created by Kafka's own tool (KIP-900)
                for user, password in ((BROKER_USER, security["broker_password"]),
                                       (CLIENT_USER, security["client_password"])):
                    for mechanism in SCRAM_MECHANISMS:
                        cmd += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                 env=self._env(node))
            if out.returncode != 0:
                log = node.log_dir / "format.log"
                log.write_text(out.stdout + out.stderr)
                raise BrokerStartError(f"formatting KRaft storage of node {node.node_id} failed; see {log}")

    def _cluster_id(self, java: str, libs: Path) -> str:
        id_file = self.home / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        cid = random_cluster_id()
        self.home.mkdir(parents=True, exist_ok=True)
        id_file.write_text(cid)
        return cid

    def _env(self, node: Node) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KAFKA_OPTS", None)
        env["LOG_DIR"] = str(node.log_dir)
        return env

    def _spawn(self, java: str, libs: Path, node: Node) -> None:
        cmd = [
            java, f"-Xms{min_heap(self.heap)}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={node.log_dir}", f"-Dlog4j2.configurationFile={node.home / 'log4j2.xml'}",
            "-cp", f"{libs}/*", "kafka.Kafka", str(node.properties),
        ]
        out = node.stdout_file.open("ab")
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._env(node),
            cwd=node.home, start_new_session=True,
            preexec_fn=die_with_parent if self.tie_to_parent else None,
        )
        out.close()
        node.pid_file.write_text(str(proc.pid))
        self._procs = getattr(self, "_procs", {})
        self._procs[node.node_id] = proc

    def wait_ready(self, timeout: float = 90.0) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "socket.timeout.ms": 2000,
                                 "log_level": 0, "logger": _quiet_logger()}
        client = self.client_security()
        if client is not None:
            conf.update(client.librdkafka())
        admin = AdminClient(conf)
        last = "no answer"
        while time.monotonic() < deadline:
            for node in self.nodes:
                self._reap(node)
                if not node.running():
                    raise BrokerStartError(
                        f"Kafka node {node.node_id} exited during start-up; see {node.log_file} "
                        f"and {node.stdout_file}: {tail(node.stdout_file) or tail(node.log_file)}")
            try:
                md = admin.list_topics(timeout=2)
                if len(md.brokers) >= len(self.nodes):
                    return
                last = f"{len(md.brokers)} of {len(self.nodes)} brokers registered"
            except Exception as exc:  # noqa: BLE001 - any client error means "not ready yet"
                last = str(exc)
            time.sleep(0.2)
        raise BrokerStartError(f"Kafka not ready after {timeout:.0f}s ({last}); see {self.log_files[0]}")

    def _reap(self, node: Node) -> None:
        proc = getattr(self, "_procs", {}).get(node.node_id)
        if proc is not None:
            proc.poll()

    def stop_node(self, node_id: int, *, grace: float = 20.0, kill: bool = False) -> None:
        """Stop one node by its own pid (SIGKILL at once when `kill`, for failover tests)."""
        node = self.nodes[node_id - 1]
        pid = node.pid()
        if pid is None:
            return
        if _is_our_broker(pid, node.properties) and pid_alive(pid):
            os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
            deadline = time.monotonic() + grace
            while pid_alive(pid) and time.monotonic() < deadline:
                self._reap(node)
                time.sleep(0.1)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                while pid_alive(pid):
                    self._reap(node)
                    time.sleep(0.05)
        self._reap(node)
        node.pid_file.unlink(missing_ok=True)

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Restart one stopped node of this cluster (after `stop_node`)."""
        node = self.nodes[node_id - 1]
        if node.running():
            return
        java = find_java()
        libs = ensure_jars(self.cache_dir, self.pom)
        self._spawn(java, libs, node)
        self._write_state()
        self.wait_ready(timeout)

    def stop(self, grace: float = 20.0) -> None:
        # SIGTERM every node first so a cluster shuts down together, then wait.
        for node in self.nodes:
            pid = node.pid()
            if pid and pid_alive(pid) and _is_our_broker(pid, node.properties):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for node in self.nodes:
            self.stop_node(node.node_id, grace=grace)
        self.state_file.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        return {
            "running": self.running(), "bootstrap": self.bootstrap_servers, "version": self.version,
            "security_protocol": "SASL_SSL" if self.sasl_ssl else "PLAINTEXT",
            "nodes": [{"node_id": n.node_id, "pid": n.pid() if n.running() else None, "port": n.port,
                       "log": str(n.log_file)} for n in self.nodes],
        }

    def wipe(self) -> None:
        if self.running():
            raise LauncherError("refusing to wipe the data of a running broker")
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> EmbeddedKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ExternalKafka:
    """An existing cluster (`KAFKA_BOOTSTRAP_SERVERS`): nothing is started or stopped."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    def start(self, timeout: float = 30.0) -> str:
        return self.bootstrap_servers

    def stop(self, grace: float = 0) -> None:
        return None

    def running(self) -> bool:
        return True

    def status(self) -> dict[str, object]:
        return {"running": True, "bootstrap": self.bootstrap_servers, "external": True}


def kafka_for(settings: Settings, *, pick_free_port: bool = False, tie_to_parent: bool = False,
              home: Path | None = None) -> EmbeddedKafka | ExternalKafka:
    if settings.kafka_bootstrap_servers:
        return ExternalKafka(settings.kafka_bootstrap_servers)
    return EmbeddedKafka(home or settings.data_dir / "kafka", port=settings.kafka_port,
                         heap=settings.kafka_heap, cache_dir=settings.cache_dir,
                         pick_free_port=pick_free_port, tie_to_parent=tie_to_parent)


@contextlib.contextmanager
def running_kafka(settings: Settings, **kw: object) -> Iterator[str]:
    kafka = kafka_for(settings, **kw)  # type: ignore[arg-type]
    bootstrap = kafka.start()
    try:
        yield bootstrap
    finally:
        kafka.stop()


def min_heap(heap: str) -> str:
    return "128m" if heap.lower().endswith(("m", "g")) else heap


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    interesting = [ln for ln in text if "ERROR" in ln or "Exception" in ln] or text
    return " | ".join(interesting[-lines:])


def _quiet_logger() -> object:
    import logging

    logger = logging.getLogger("botstream.kafka.admin")
    logger.setLevel(logging.CRITICAL)
    return logger
