"""The codec a process uses, chosen by settings: Avro single-object framing by default, the Confluent
wire format through a schema registry when `SCHEMA_REGISTRY_URL` is set. Decoding reads both.

The registry client is confluent-kafka's (`botstream.schemas.registry` wraps it for the codec);
`registry_config` turns the settings into its configuration:

| setting                                   | confluent-kafka property                         |
|-------------------------------------------|--------------------------------------------------|
| `SCHEMA_REGISTRY_URL`                     | `url` (credentials in it work, and are masked)   |
| `BOTSTREAM_SCHEMA_REGISTRY_USER`/`_PASSWORD` | `basic.auth.user.info` (`user:password`)      |
| `BOTSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN`  | `bearer.auth.credentials.source` = STATIC_TOKEN, `bearer.auth.token` |
| `..._LOGICAL_CLUSTER`, `..._IDENTITY_POOL`| `bearer.auth.logical.cluster`, `bearer.auth.identity.pool.id` |
| `..._CA_FILE`, `..._CERT_FILE`, `..._KEY_FILE`, `..._KEY_PASSWORD` | `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, `ssl.key.password` |

Passwords and tokens are `Secret` settings (a literal, `env:NAME` or `file:PATH`), revealed only here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from botstream.core.errors import ConfigError
from botstream.core.settings import Settings
from botstream.schemas.codec import Codec
from botstream.schemas.registry import DEFAULT_CONFIG, SchemaRegistryClient

# record name -> the topic whose subject (`<topic>-value`) registers it
RECORD_TOPICS = {"update": "updates", "conversation_event": "messages", "reply": "replies",
                 "delivery_result": "deliveries", "quarantine": "quarantine"}


def registry_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka's schema registry client configuration from the settings (see the table above);
    a `ConfigError` naming the settings when they contradict each other."""
    url = settings.schema_registry_url
    if not url:
        raise ConfigError("SCHEMA_REGISTRY_URL is not set")
    conf: dict[str, Any] = {**DEFAULT_CONFIG, "url": url}
    in_url = any(urlparse(u.strip()).username for u in url.split(","))
    user, password, token = (settings.schema_registry_user, settings.schema_registry_password,
                             settings.schema_registry_bearer_token)
    if password is not None and user is None:
        raise ConfigError("BOTSTREAM_SCHEMA_REGISTRY_PASSWORD is set without BOTSTREAM_SCHEMA_REGISTRY_USER")
    if user is not None:
        if in_url:
            raise ConfigError("SCHEMA_REGISTRY_URL carries credentials and BOTSTREAM_SCHEMA_REGISTRY_USER is set: "
                              "use one of them")
        if token is not None:
            raise ConfigError("BOTSTREAM_SCHEMA_REGISTRY_USER (basic auth) and BOTSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN "
                              "are both set: use one of them")
        conf["basic.auth.user.info"] = f"{user}:{password.reveal() if password is not None else ''}"
    if token is not None:
        if in_url:
            raise ConfigError("SCHEMA_REGISTRY_URL carries credentials and BOTSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN is "
                              "set: use one of them")
        conf["bearer.auth.credentials.source"] = "STATIC_TOKEN"
        conf["bearer.auth.token"] = token.reveal()
        conf["bearer.auth.logical.cluster"] = settings.schema_registry_logical_cluster or ""
        if settings.schema_registry_identity_pool:
            conf["bearer.auth.identity.pool.id"] = settings.schema_registry_identity_pool
    if settings.schema_registry_ca_file is not None:
        conf["ssl.ca.location"] = str(settings.schema_registry_ca_file)
    if settings.schema_registry_cert_file is not None:
        conf["ssl.certificate.location"] = str(settings.schema_registry_cert_file)
    if settings.schema_registry_key_file is not None:
        if settings.schema_registry_cert_file is None:
            raise ConfigError("BOTSTREAM_SCHEMA_REGISTRY_KEY_FILE needs BOTSTREAM_SCHEMA_REGISTRY_CERT_FILE")
        conf["ssl.key.location"] = str(settings.schema_registry_key_file)
    if settings.schema_registry_key_password is not None:
        conf["ssl.key.password"] = settings.schema_registry_key_password.reveal()
    return conf


def registry_client(settings: Settings) -> SchemaRegistryClient:
    """The registry client for the codec; a bad configuration (an unreadable certificate, ...) is a
    `ConfigError` naming the registry settings, never the credentials."""
    try:
        return SchemaRegistryClient(registry_config(settings))
    except (ValueError, TypeError, OSError) as exc:  # what confluent-kafka raises on a bad configuration
        raise ConfigError(f"schema registry settings (SCHEMA_REGISTRY_URL, BOTSTREAM_SCHEMA_REGISTRY_*): "
                          f"{type(exc).__name__}: {exc}") from None


def codec_for(settings: Settings, records: Iterable[str] | None = None) -> Codec:
    """The codec for this process; with a registry, the current schema of each of `records` (default:
    every record name) is registered under its topic's subject now — blocking HTTP at start-up, never
    inside the event loop."""
    if not settings.schema_registry_url:
        return Codec()
    names = list(RECORD_TOPICS) if records is None else list(records)
    topics = {name: settings.topic(RECORD_TOPICS[name]) for name in names}
    codec = Codec(registry=registry_client(settings), topics=topics)
    codec.register_schemas()
    return codec
