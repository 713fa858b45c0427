"""The one Kafka client layer: where every confluent-kafka producer, consumer and admin client gets its
configuration, and where the cluster's address is resolved.

Everything that talks to Kafka outside Faust (ingest's producer, the workers' output producer and
changelog restore, admin, lag, replay, tail, the DLQ tools, the tests and benches) builds its client
from these functions, so the settings a guarantee rests on are written once:

- **bootstrap**: `KAFKA_BOOTSTRAP_SERVERS`, else the embedded broker `botstream kafka up` started
  (its state file under the data dir), else a `ConfigError` that says how to get one;
- **co-partitioning**: `partitioner=murmur2_random` is the Java client's murmur2 for keyed records,
  which is also what Faust's aiokafka uses; librdkafka's default (crc32) would put a chat on another
  partition number than its state;
- **durability**: idempotent producers with acks=all (retries cannot duplicate or reorder);
- **security**: `security_config` is merged into every client (and into Faust's, through
  `botstream.core.faust_app`), so TLS and SASL are configured in one place.

`read_to_end` is the one way to read partitions from an offset up to their end as it was when the
read began (replay, DLQ tools, changelog restore).
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from botstream.core.errors import ConfigError
from botstream.core.processes import pid_alive
from botstream.core.secret import Secret
from botstream.core.settings import KAFKA_SASL_MECHANISMS, KAFKA_SECURITY_PROTOCOLS, Settings

__all__ = [
    "PARTITIONER",
    "admin_config",
    "bootstrap_servers",
    "consumer_config",
    "embedded_bootstrap",
    "header_map",
    "producer_config",
    "read_to_end",
    "security_config",
]

PARTITIONER = "murmur2_random"
COMPRESSION = "lz4"
EMBEDDED_STATE = ("kafka", "cluster.json")  # under settings.data_dir, written by the embedded launcher


def embedded_bootstrap(settings: Settings) -> str | None:
    """The address of the embedded broker `botstream kafka up` runs for this data dir, if it is alive."""
    state_file = settings.data_dir.joinpath(*EMBEDDED_STATE)
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    pids = [int(p) for p in state.get("pids", [])]
    if not pids or not all(pid_alive(p) for p in pids):
        return None
    bootstrap = state.get("bootstrap")
    return str(bootstrap) if bootstrap else None


def bootstrap_servers(settings: Settings) -> str:
    """The cluster to talk to: the configured one, else the running embedded broker."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    embedded = embedded_bootstrap(settings)
    if embedded is None:
        raise ConfigError("no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS or start one with `botstream kafka up`")
    return embedded


def security_config(settings: Settings) -> dict[str, Any]:
    """TLS / SASL settings shared by every confluent-kafka client (librdkafka's names). PLAINTEXT needs
    none. Raises ConfigError, naming the environment variable, when the settings do not add up."""
    sec = kafka_security(settings)
    if sec.protocol == "PLAINTEXT":
        return {}
    conf: dict[str, Any] = {"security.protocol": sec.protocol}
    if sec.tls:
        if sec.ca_file is not None:
            conf["ssl.ca.location"] = str(sec.ca_file)
        if sec.cert_file is not None and sec.key_file is not None:
            conf["ssl.certificate.location"] = str(sec.cert_file)
            conf["ssl.key.location"] = str(sec.key_file)
            if sec.key_password is not None:
                conf["ssl.key.password"] = sec.key_password.reveal()
    if sec.mechanism == "OAUTHBEARER":
        assert sec.oauth is not None
        conf.update({
            "sasl.mechanisms": "OAUTHBEARER",
            "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.token.endpoint.url": sec.oauth.token_url,
            "sasl.oauthbearer.client.id": sec.oauth.client_id,
            "sasl.oauthbearer.client.secret": sec.oauth.client_secret.reveal(),
        })
        if sec.oauth.scope:
            conf["sasl.oauthbearer.scope"] = sec.oauth.scope
    elif sec.mechanism is not None:
        assert sec.username is not None and sec.password is not None
        conf.update({"sasl.mechanisms": sec.mechanism, "sasl.username": sec.username,
                     "sasl.password": sec.password.reveal()})
    return conf


# -- security: one validated view of the settings, for librdkafka and for Faust's aiokafka ------------------

@dataclass(frozen=True)
class OAuthClient:
    """OAUTHBEARER through OIDC client credentials: where to get a token, and as whom."""

    token_url: str
    client_id: str
    client_secret: Secret
    scope: str | None = None


@dataclass(frozen=True)
class KafkaSecurity:
    """The Kafka security settings, checked: what every client (librdkafka, aiokafka) is given."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: Secret | None = None
    oauth: OAuthClient | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: Secret | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")


_REGISTERED_SECRETS: set[str] = set()


def kafka_security(settings: Settings) -> KafkaSecurity:
    """The security settings of `settings`, checked as a whole. Every problem is a ConfigError naming
    the environment variable to fix; the secrets are registered for masking in every log line."""
    env = settings.env_names()
    protocol = str(settings.kafka_security_protocol).upper()
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(f"{env['kafka_security_protocol']}: {settings.kafka_security_protocol!r} is not one of "
                          f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}")
    sec = KafkaSecurity(protocol=protocol)
    tls_fields = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file", "kafka_ssl_key_password")
    sasl_fields = ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password", "kafka_oauth_token_url",
                   "kafka_oauth_client_id", "kafka_oauth_client_secret", "kafka_oauth_scope")
    for name in (() if sec.tls else tls_fields) + (() if sec.sasl else sasl_fields):
        if getattr(settings, name) is not None:
            raise ConfigError(f"{env[name]} is set, but {env['kafka_security_protocol']}={protocol} "
                              f"{'uses no TLS' if name in tls_fields else 'uses no SASL'}")
    if sec.tls:
        files = {}
        for name in ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file"):
            path = getattr(settings, name)
            if path is not None:
                path = Path(path).expanduser()
                if not path.is_file():
                    raise ConfigError(f"{env[name]}: {str(path)!r} is not a readable file")
            files[name] = path
        cert, key = files["kafka_ssl_cert_file"], files["kafka_ssl_key_file"]
        if (cert is None) != (key is None):
            missing = "kafka_ssl_key_file" if key is None else "kafka_ssl_cert_file"
            raise ConfigError(f"{env[missing]} is needed with "
                              f"{env['kafka_ssl_cert_file' if key is None else 'kafka_ssl_key_file']} (mutual TLS)")
        if settings.kafka_ssl_key_password is not None and key is None:
            raise ConfigError(f"{env['kafka_ssl_key_password']} is set without {env['kafka_ssl_key_file']}")
        sec = replace(sec, ca_file=files["kafka_ssl_ca_file"], cert_file=cert, key_file=key,
                      key_password=settings.kafka_ssl_key_password)
    if sec.sasl:
        mechanism = str(settings.kafka_sasl_mechanism or "").upper()
        if not mechanism:
            raise ConfigError(f"{env['kafka_sasl_mechanism']} is needed with {env['kafka_security_protocol']}="
                              f"{protocol}: one of {', '.join(KAFKA_SASL_MECHANISMS)}")
        if mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(f"{env['kafka_sasl_mechanism']}: {settings.kafka_sasl_mechanism!r} is not one of "
                              f"{', '.join(KAFKA_SASL_MECHANISMS)}")
        needed: tuple[str, ...]
        unused: tuple[str, ...]
        if mechanism == "OAUTHBEARER":
            needed = ("kafka_oauth_token_url", "kafka_oauth_client_id", "kafka_oauth_client_secret")
            unused = ("kafka_sasl_username", "kafka_sasl_password")
        else:
            needed = ("kafka_sasl_username", "kafka_sasl_password")
            unused = ("kafka_oauth_token_url", "kafka_oauth_client_id", "kafka_oauth_client_secret",
                      "kafka_oauth_scope")
        for name in needed:
            if not getattr(settings, name):
                raise ConfigError(f"{env[name]} is needed with {env['kafka_sasl_mechanism']}={mechanism}")
        for name in unused:
            if getattr(settings, name) is not None:
                raise ConfigError(f"{env[name]} is set, but {env['kafka_sasl_mechanism']}={mechanism} does not use it")
        if mechanism == "OAUTHBEARER":
            url = str(settings.kafka_oauth_token_url)
            if not url.startswith(("https://", "http://")):
                raise ConfigError(f"{env['kafka_oauth_token_url']}: {url!r} is not an http(s) URL")
            assert settings.kafka_oauth_client_secret is not None
            oauth = OAuthClient(url, str(settings.kafka_oauth_client_id), settings.kafka_oauth_client_secret,
                                settings.kafka_oauth_scope or None)
            sec = replace(sec, mechanism=mechanism, oauth=oauth)
        else:
            sec = replace(sec, mechanism=mechanism, username=settings.kafka_sasl_username,
                          password=settings.kafka_sasl_password)
    secrets = {s.reveal() for s in (sec.password, sec.key_password, sec.oauth and sec.oauth.client_secret)
               if isinstance(s, Secret)}
    if not secrets <= _REGISTERED_SECRETS:
        from botstream.core.logs import register_secrets

        _REGISTERED_SECRETS.update(secrets)
        register_secrets(secrets)
    return sec


def client_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of Python clients (Faust's aiokafka, the OIDC token request is not one: it uses
    httpx's own): the CA file or the system's CAs, hostname checked, and the client certificate for
    mutual TLS. None when the protocol uses no TLS."""
    sec = kafka_security(settings)
    if not sec.tls:
        return None
    env = settings.env_names()
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(sec.ca_file) if sec.ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{env['kafka_ssl_ca_file']}: no CA certificate could be read from "
                          f"{str(sec.ca_file)!r} ({exc})") from None
    if sec.cert_file is not None and sec.key_file is not None:
        try:
            context.load_cert_chain(str(sec.cert_file), str(sec.key_file),
                                    password=sec.key_password.reveal() if sec.key_password else None)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{env['kafka_ssl_cert_file']} / {env['kafka_ssl_key_file']} / "
                              f"{env['kafka_ssl_key_password']}: the client certificate and key cannot be "
                              f"used ({exc})") from None
    return context


def faust_credentials(settings: Settings) -> tuple[Any, ssl.SSLContext | None]:
    """`(broker_credentials, ssl_context)` for a Faust app: the same protocol, mechanism, user, CA and
    client certificate as `security_config` gives librdkafka. OAUTHBEARER gets an `OidcTokenProvider`."""
    sec = kafka_security(settings)
    context = client_ssl_context(settings)
    if sec.protocol == "PLAINTEXT":
        return None, None
    import faust

    if sec.protocol == "SSL":
        return faust.SSLCredentials(context), context
    if sec.mechanism == "OAUTHBEARER":
        from aiokafka.abc import AbstractTokenProvider

        assert sec.oauth is not None
        AbstractTokenProvider.register(OidcTokenProvider)  # what aiokafka checks, without importing it here
        provider = OidcTokenProvider(sec.oauth, env=settings.env_names())
        return faust.OAuthCredentials(oauth_cb=provider, ssl_context=context), context
    assert sec.username is not None and sec.password is not None
    return faust.SASLCredentials(username=sec.username, password=sec.password.reveal(), ssl_context=context,
                                 mechanism=sec.mechanism), context


class OidcTokenProvider:
    """aiokafka's `sasl_oauth_token_provider` for OAUTHBEARER: the OAuth 2.0 client-credentials grant
    (RFC 6749 section 4.4) against the OIDC token endpoint, as librdkafka's `sasl.oauthbearer.method=oidc`
    does it (client id and secret in HTTP Basic auth, `grant_type=client_credentials` and the scope in
    the form body). A token is reused until `REFRESH_AT` of its lifetime (`expires_in`, else the JWT's
    `exp`, else `DEFAULT_LIFETIME_S`) has passed; concurrent connections share one request."""

    REFRESH_AT = 0.8
    DEFAULT_LIFETIME_S = 300.0

    def __init__(self, client: OAuthClient, *, env: Mapping[str, str] | None = None, timeout_s: float = 10.0,
                 transport: Any = None, clock: Any = time.monotonic) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._env = dict(env or {})
        self._transport = transport  # httpx transport (tests); None: the network
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock: Any = None
        self.requests = 0  # token requests made (for tests and debugging)

    def _name(self, field_name: str) -> str:
        return self._env.get(field_name, f"BOTSTREAM_{field_name.upper()}")

    async def token(self) -> str:
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = await self._fetch()
                self._refresh_at = self._clock() + lifetime * self.REFRESH_AT
            return self._token

    def extensions(self) -> dict[str, str]:
        return {}

    async def _fetch(self) -> tuple[str, float]:
        import httpx

        client = self.client
        form = {"grant_type": "client_credentials"}
        if client.scope:
            form["scope"] = client.scope
        self.requests += 1
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout_s) as http:
                resp = await http.post(client.token_url, data=form, headers={"Accept": "application/json"},
                                       auth=(client.client_id, client.client_secret.reveal()))
        except httpx.HTTPError as exc:
            raise ConfigError(f"{self._name('kafka_oauth_token_url')}: cannot get a token from "
                              f"{client.token_url} ({type(exc).__name__}: {exc})") from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code in (400, 401, 403):
            reason = body.get("error") if isinstance(body, dict) else None
            raise ConfigError(f"{self._name('kafka_oauth_client_id')} / {self._name('kafka_oauth_client_secret')}: "
                              f"the token endpoint {client.token_url} refused the client credentials "
                              f"(HTTP {resp.status_code}{': ' + str(reason) if reason else ''})")
        token = body.get("access_token") if isinstance(body, dict) else None
        if resp.status_code != 200 or not isinstance(token, str) or not token:
            raise ConfigError(f"{self._name('kafka_oauth_token_url')}: {client.token_url} answered HTTP "
                              f"{resp.status_code} without an access_token")
        assert isinstance(body, dict)
        return token, _token_lifetime(body, token, self.DEFAULT_LIFETIME_S)


def _token_lifetime(body: Mapping[str, Any], token: str, default: float) -> float:
    """Seconds the token is valid: the response's `expires_in`, else the JWT's `exp` claim."""
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int | float | str):
        try:
            return max(float(expires_in), 1.0)
        except ValueError:
            pass
    parts = token.split(".")
    if len(parts) == 3:
        import base64

        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            return max(float(claims["exp"]) - time.time(), 1.0)
        except (ValueError, KeyError, TypeError):
            pass
    return default


# librdkafka's words when it does not trust the broker's certificate (OpenSSL's verify errors)
CA_PROBLEMS = ("certificate verify failed", "could not be verified", "unable to get local issuer",
               "self-signed certificate", "self signed certificate", "unable to get issuer")


def explain_security_error(settings: Settings, code: int, message: str) -> str | None:
    """A librdkafka error (its code and text) as one line naming the setting to fix, or None when it is
    not about the security settings (a broker that is down, say)."""
    env = settings.env_names()
    text = " ".join(message.split())
    lowered = text.lower()
    if code == KafkaError._AUTHENTICATION or "authentication failed" in lowered or "sasl authentication" in lowered:
        if str(settings.kafka_sasl_mechanism or "").upper() == "OAUTHBEARER":
            names = (f"{env['kafka_oauth_token_url']}, {env['kafka_oauth_client_id']} and "
                     f"{env['kafka_oauth_client_secret']}")
        else:
            names = f"{env['kafka_sasl_username']} and {env['kafka_sasl_password']}"
        return (f"Kafka refused the credentials ({settings.kafka_sasl_mechanism} as "
                f"{settings.kafka_sasl_username or settings.kafka_oauth_client_id!r}): check {names} ({text})")
    if code == KafkaError._SSL or "ssl handshake" in lowered:
        if any(words in lowered for words in CA_PROBLEMS):
            where = str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else "unset: the system's CAs"
            return (f"the broker's TLS certificate is not trusted: check {env['kafka_ssl_ca_file']} "
                    f"({where}) ({text})")
        return (f"the TLS handshake with the broker failed: check {env['kafka_security_protocol']}, "
                f"{env['kafka_ssl_cert_file']} and {env['kafka_ssl_key_file']} ({text})")
    if "security.protocol" in lowered:
        return (f"the broker does not speak {settings.kafka_security_protocol} on this address: check "
                f"{env['kafka_security_protocol']} and KAFKA_BOOTSTRAP_SERVERS ({text})")
    return None


def check_access(settings: Settings, *, bootstrap: str | None = None, timeout_s: float = 20.0) -> bool:
    """Fail fast on wrong security settings: one metadata request with them. Raises ConfigError (one
    line naming the setting) when the broker refuses the credentials or its certificate is not trusted;
    returns True once the broker answered, False when it did not answer within `timeout_s` for another
    reason (a broker that is down is waited for by the clients themselves, as without security).
    With PLAINTEXT there is nothing to check: True at once."""
    if kafka_security(settings).protocol == "PLAINTEXT":
        return True
    import logging

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    seen: list[KafkaError] = []
    quiet = logging.getLogger("botstream.kafka.check_access")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    conf = admin_config(settings, bootstrap=bootstrap, timeout_s=min(timeout_s, 10.0),
                        error_cb=seen.append, logger=quiet)
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            return True
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if error is not None:
                seen.append(error)
        admin.poll(0.2)
        for error in seen:
            problem = explain_security_error(settings, error.code(), error.str())
            if problem:
                raise ConfigError(problem)
        seen.clear()
        if time.monotonic() >= deadline:
            return False


__all__ += ["KafkaSecurity", "OAuthClient", "OidcTokenProvider", "check_access", "client_ssl_context",
            "explain_security_error", "faust_credentials", "kafka_security"]


def _base(settings: Settings, bootstrap: str | None) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap or bootstrap_servers(settings), **security_config(settings),
            **client_logger_config()}


def producer_config(settings: Settings, *, bootstrap: str | None = None, client_id: str = "botstream",
                    linger_ms: int = 5, **overrides: Any) -> dict[str, Any]:
    """A durable producer: idempotent, acks=all, chats co-partitioned, lz4."""
    return {
        **_base(settings, bootstrap),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": PARTITIONER,
        "compression.type": COMPRESSION,
        "linger.ms": linger_ms,
        # A missing topic is an error, never a 1-partition topic made by the broker's auto-create.
        "allow.auto.create.topics": False,
        "socket.nagle.disable": True,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
        "log.connection.close": False,
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str | None = None, *, bootstrap: str | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only what it is told to; `group_id` None means a throwaway group."""
    return {
        **_base(settings, bootstrap),
        "group.id": group_id or f"botstream-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "allow.auto.create.topics": False,
        "log.connection.close": False,
        **overrides,
    }


def admin_config(settings: Settings, *, bootstrap: str | None = None, timeout_s: float = 10.0,
                 **overrides: Any) -> dict[str, Any]:
    return {**_base(settings, bootstrap), "socket.timeout.ms": int(timeout_s * 1000), **overrides}


def read_to_end(consumer: Consumer, starts: Iterable[TopicPartition], *, timeout_s: float = 60.0,
                batch: int = 1000) -> Iterator[Message]:
    """Yield the records of `starts` (topic, partition, start offset) up to each partition's end as it
    was when the read began, in offset order per partition. Partitions with nothing to read are skipped.
    Raises TimeoutError when the end is not reached within `timeout_s`."""
    ends: dict[tuple[str, int], int] = {}
    assign: list[TopicPartition] = []
    for tp in starts:
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s)
        start = tp.offset
        if start == OFFSET_BEGINNING or start < low:
            start = low
        if start >= high:
            continue
        ends[(tp.topic, tp.partition)] = high
        assign.append(TopicPartition(tp.topic, tp.partition, start))
    if not assign:
        return
    consumer.assign(assign)
    deadline = time.monotonic() + timeout_s
    try:
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {sorted(ends)} to their end took longer than {timeout_s:g}s")
            for msg in consumer.consume(batch, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise error_to_exception(error)
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                assert topic is not None and partition is not None and offset is not None
                end = ends.get((topic, partition))
                if end is None or offset >= end:
                    continue
                yield msg
                if offset + 1 >= end:
                    del ends[(topic, partition)]
    finally:
        consumer.unassign()


def header_map(headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None) -> dict[str, bytes]:
    """A record's headers as {lower-case name: bytes}; the last value of a repeated name wins."""
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, bytes] = {}
    for name, value in items:
        if value is None:
            continue
        out[str(name).lower()] = value.encode() if isinstance(value, str) else bytes(value)
    return out


def error_to_exception(error: KafkaError) -> Exception:
    from confluent_kafka import KafkaException

    return KafkaException(error)


def topic_partitions(client: Any, topic: str, *, timeout_s: float = 15.0) -> list[int]:
    """The partition ids of `topic`, sorted; [] when the topic does not exist. `client` is any
    confluent-kafka client (Consumer, Producer, AdminClient): they all answer `list_topics`."""
    meta = client.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return []
    return sorted(meta.partitions)


__all__ += ["topic_partitions"]


def client_logger_config() -> dict[str, Any]:
    """`{"logger": ...}`, to merge into any confluent-kafka client's configuration: librdkafka's log
    lines then go through Python logging (the process's JSON formatter, with `kafka_facility` and
    `kafka_client` fields; see botstream.core.logs) instead of raw to stderr. confluent-kafka serves
    them from the client's own `poll()` / `flush()` / `consume()`, never from librdkafka's threads; an
    AdminClient that is never polled drops them."""
    import logging

    from botstream.core.logs import LIBRDKAFKA_LOGGER

    return {"logger": logging.getLogger(LIBRDKAFKA_LOGGER)}


__all__ += ["client_logger_config"]
