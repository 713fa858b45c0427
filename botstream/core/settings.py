"""One typed settings object, read from the environment in one place.

Each setting is declared once, with its type, environment variable, default and meaning. Entry points
call `Settings.from_env()` and pass the object down; nothing else reads `os.environ`.
Secrets are `Secret` values, so `as_dict()` (what `botstream config show` prints) never shows them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from botstream.core.errors import ConfigError
from botstream.core.secret import Secret, resolve_secret

REPO_ROOT = Path(__file__).resolve().parents[2]


def setting(default: Any, doc: str, env: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "env": env, "choices": choices})


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True)
class Settings:
    # Kafka
    kafka_bootstrap_servers: str | None = setting(
        None, "An existing cluster to use; when unset the embedded broker is started.",
        env="KAFKA_BOOTSTRAP_SERVERS")
    schema_registry_url: str | None = setting(
        None, "Confluent-compatible schema registry; when set records use its wire format.",
        env="SCHEMA_REGISTRY_URL")
    # Schema registry access (botstream.core.codec.registry_config): basic auth or a bearer token, and TLS
    schema_registry_user: str | None = setting(
        None, "Schema registry basic auth: the user (Confluent Cloud: the API key).")
    schema_registry_password: Secret | None = setting(
        None, "Schema registry basic auth: the password (literal, env:NAME or file:PATH).")
    schema_registry_bearer_token: Secret | None = setting(
        None, "Schema registry bearer token, instead of basic auth (literal, env:NAME or file:PATH).")
    schema_registry_logical_cluster: str | None = setting(
        None, "Bearer auth: the registry's logical cluster (Confluent Cloud: lsrc-...), sent as target-sr-cluster.")
    schema_registry_identity_pool: str | None = setting(
        None, "Bearer auth: the identity pool id, when the registry asks for one.")
    schema_registry_ca_file: Path | None = setting(
        None, "CA certificates (PEM) that sign the registry's certificate; unset: the system's.")
    schema_registry_cert_file: Path | None = setting(None, "Client certificate (PEM) for mutual TLS with the registry.")
    schema_registry_key_file: Path | None = setting(None, "Client private key (PEM) for mutual TLS with the registry.")
    schema_registry_key_password: Secret | None = setting(
        None, "Password of an encrypted registry client key (literal, env:NAME or file:PATH).")
    topic_prefix: str = setting("botstream", "Prefix of every topic name.")
    partitions: int = setting(6, "Partitions of every chat-keyed topic (all equal: co-partitioning).")
    replication_factor: int = setting(1, "Replication factor of the project's topics.")
    min_insync_replicas: int = setting(1, "min.insync.replicas of the project's topics.")
    # Kafka security: every client (confluent-kafka and the Faust workers' aiokafka), botstream.core.kafka
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.", choices=KAFKA_SECURITY_PROTOCOLS)
    kafka_sasl_mechanism: str | None = setting(
        None, "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (needed by the SASL_* protocols).",
        choices=KAFKA_SASL_MECHANISMS)
    kafka_sasl_username: str | None = setting(None, "SASL user (PLAIN, SCRAM); Confluent Cloud: the API key.")
    kafka_sasl_password: Secret | None = setting(None, "SASL password: a literal, env:NAME or file:PATH.")
    kafka_oauth_token_url: str | None = setting(None, "OAUTHBEARER: the OIDC token endpoint (client credentials).")
    kafka_oauth_client_id: str | None = setting(None, "OAUTHBEARER: the OIDC client id.")
    kafka_oauth_client_secret: Secret | None = setting(
        None, "OAUTHBEARER: the OIDC client secret (literal, env:NAME or file:PATH).")
    kafka_oauth_scope: str | None = setting(None, "OAUTHBEARER: the scope asked for, if the provider needs one.")
    kafka_ssl_ca_file: Path | None = setting(
        None, "CA certificates (PEM) that sign the brokers' certificates; unset: the system's.")
    kafka_ssl_cert_file: Path | None = setting(None, "Client certificate (PEM) for mutual TLS.")
    kafka_ssl_key_file: Path | None = setting(None, "Client private key (PEM) for mutual TLS.")
    kafka_ssl_key_password: Secret | None = setting(
        None, "Password of an encrypted client key (literal, env:NAME or file:PATH).")
    # Files and folders
    bots_file: Path | None = setting(None, "TOML file declaring the bots.")
    data_dir: Path = setting(REPO_ROOT / ".botstream", "State (RocksDB tables, pids, logs) of local runs.")
    cache_dir: Path = setting(REPO_ROOT / ".cache", "Downloads (the Kafka jars).")
    # Embedded broker
    kafka_port: int = setting(9092, "Port of the embedded broker.")
    kafka_heap: str = setting("512m", "Max heap of the embedded broker.")
    # Ingest
    ingest_host: str = setting("127.0.0.1", "Address ingest listens on.")
    ingest_port: int = setting(8080, "Port ingest listens on.")
    ingest_workers: int = setting(
        0, "Ingest processes sharing the port; 0 = one per two CPUs (ingest shares the machine with the "
           "workers and the broker in `botstream up`; give it more on a machine of its own).")
    max_body_bytes: int = setting(1 << 20, "Largest webhook body accepted (WhatsApp: 3 MB regardless).")
    ack_timeout_s: float = setting(2.0, "How long ingest waits for the broker's ack before a 503.")
    ingest_linger_ms: int = setting(
        5, "How long ingest's producer gathers concurrent requests' records into one produce request "
           "(adds up to this much to the acknowledgement; 1 answers a few ms sooner for more broker work).")
    # Ingest listener limits (botstream.ingest.listener): a slow or idle client cannot hold resources
    ingest_header_timeout_s: float = setting(
        10.0, "A request's line and headers must arrive within this many seconds of its first byte (of connecting).")
    ingest_body_timeout_s: float = setting(
        30.0, "A request's body must arrive within this many seconds of its headers.")
    ingest_keep_alive_s: float = setting(
        65.0, "An idle keep-alive connection is closed after this many seconds (more than load balancers' 60).")
    ingest_max_header_bytes: int = setting(32 * 1024, "Largest request line + headers; larger is answered 431.")
    ingest_max_connections: int = setting(
        1000, "Open connections per ingest process; at the limit the longest-idle one is closed for a new one.")
    # Faust workers (streams, sinks)
    web_host: str = setting("127.0.0.1", "Address the Faust web server (streams/sinks /metrics) listens on.")
    web_table_views: bool = setting(
        False, "Serve Faust's /table and /router views on the workers' web port (they show table data).")
    fetch_batch_wait_ms: int = setting(
        20, "While records flow, a worker's next fetch waits up to this long to bring a batch (an idle worker "
            "long-polls and gets the first record at once); 0 = one-byte fetches, each record its own fetch.")
    # Streams
    streams_web_port: int = setting(6066, "Faust web port of a streams worker.")
    dedupe_window_s: int = setting(7 * 24 * 3600, "How long a platform update id is remembered.")
    handler_timeout_s: float = setting(10.0, "Timeout of one handler call.")
    checkpoint_interval_s: float = setting(
        1.0, "How often a worker makes its work durable: outputs and changelogs flushed, offsets committed, "
             "state written (a crash redoes at most this much; outputs leave as they are made either way).")
    chat_concurrency: int = setting(64, "Chats handled at once per worker.")
    rocksdb_block_cache_bytes: int = setting(8 << 20, "RocksDB block cache per table partition DB.")
    rocksdb_write_buffer_bytes: int = setting(4 << 20, "RocksDB write buffer per table partition DB.")
    # Sinks
    sinks_web_port: int = setting(6067, "Faust web port of a sinks worker.")
    send_timeout_s: float = setting(5.0, "Timeout of one platform API call.")
    sinks_http_transport: str = setting(
        "aiohttp", "Connection pool under the platform calls' httpx API (botstream.sinks.transport).",
        choices=("aiohttp", "httpx-sharded", "httpx-tuned", "httpx"))
    retry_delays_s: str = setting("5,30,300", "Delays of the retry topics replies.retry.1..N.")
    max_attempts: int = setting(5, "Delivery attempts before a reply goes to the DLQ.")
    # Sandbox
    sandbox_port: int = setting(8090, "Port of the platform sandbox.")
    sandbox_token: Secret | None = setting(
        None, "Token of the sandbox's control API (literal, env:NAME or file:PATH); unset: the sandbox makes one.")
    # Observability
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.", choices=LOG_LEVELS)
    log_format: str = setting("json", "json (structured lines) or text.", choices=LOG_FORMATS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata.get("env") or f"BOTSTREAM_{f.name.upper()}"
            if name in env and env[name] != "":
                values[f.name] = _convert(env[name], hints[f.name], name, env)
                choices = f.metadata.get("choices")
                if choices:  # a closed set: any case is read, the value kept as the set spells it
                    spelled = {c.lower(): c for c in choices}.get(str(values[f.name]).lower())
                    if spelled is None:
                        raise ConfigError(f"{name}: {env[name]!r} is not one of {', '.join(choices)}")
                    values[f.name] = spelled
        values.update(overrides)
        return cls(**values)

    def env_names(self) -> dict[str, str]:
        return {f.name: f.metadata.get("env") or f"BOTSTREAM_{f.name.upper()}" for f in dataclasses.fields(self)}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _show(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def ingest_processes(self) -> int:
        """How many ingest processes to run: `ingest_workers`, or one per two CPUs when it is 0."""
        if self.ingest_workers > 0:
            return self.ingest_workers
        return max(1, (os.cpu_count() or 1) // 2)

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.retry_delays_s.split(",") if x.strip())

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"


def _convert(raw: str, typ: Any, env_name: str, environ: Mapping[str, str] | None = None) -> Any:
    base = typ
    args = getattr(typ, "__args__", None)
    if args:  # X | None
        base = next(a for a in args if a is not type(None))
    if base is Secret:  # a literal, env:NAME or file:PATH; the value itself is never shown
        try:
            return resolve_secret(raw, environ=dict(environ) if environ is not None else None)
        except ConfigError as exc:
            raise ConfigError(f"{env_name}: {exc}") from None
    try:
        if base is bool:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if base is Path:
            return Path(raw)
        return base(raw)
    except ValueError:
        raise ConfigError(f"{env_name}: cannot read {raw!r} as {getattr(base, '__name__', base)}") from None


def _show(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Secret):
        return repr(value)  # the mask and where it came from (env:NAME, file:PATH), never the value
    return value
