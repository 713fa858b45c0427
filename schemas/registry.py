"""The codec's schema registry: confluent-kafka's `SchemaRegistryClient`, seen through two calls.

- ``register(subject, schema)`` registers (or finds) an Avro schema under a subject and returns its
  global id (``POST /subjects/{subject}/versions``);
- ``schema_by_id(id)`` returns the schema a Confluent-framed record was written with
  (``GET /schemas/ids/{id}``).

The HTTP, authentication (basic auth, static bearer tokens, OAuth client credentials), TLS and mTLS,
retries and caching are confluent-kafka's: the client is configured with its own property names
(``url``, ``basic.auth.user.info``, ``bearer.auth.credentials.source``, ``bearer.auth.token``,
``ssl.ca.location``, ...). `botstream.core.codec.registry_config` builds them from the settings;
this package reads no settings. Ids never change meaning, so both directions are cached here for the
life of the process too (so a cached id needs no lock or call at all).

Failures are translated at this boundary into the package errors: unreachable, timed out or 5xx →
``RegistryUnavailableError`` (retriable; then the client fails fast for ``cooldown_s`` instead of
making each record of a batch wait for its own timeout), unknown id → ``UnknownSchemaError``, refused
registration (4xx: incompatible, invalid, not authorized) → ``RegistryRejectedError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from botstream.schemas.errors import RegistryRejectedError, RegistryUnavailableError, UnknownSchemaError

if TYPE_CHECKING:  # ~0.2 s of imports (authlib, httpx2): only processes that use a registry pay them
    from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistryClient

__all__ = ["CONTENT_TYPE", "DEFAULT_CONFIG", "SchemaRegistryClient"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_NOT_FOUND = 40403  # the registry's error_code for an unknown id
# Defaults under what the caller configures: short attempts and one retry, since a record waiting on
# the registry holds its batch; the codec's callers retry the retriable error themselves.
DEFAULT_CONFIG: dict[str, Any] = {"timeout": 2.0, "max.retries": 1, "retries.wait.ms": 100,
                                  "retries.max.wait.ms": 1000}


class SchemaRegistryClient:
    """Synchronous, caching registry client (calls are rare: once per schema or id).

    ``registry`` is a registry URL, a confluent-kafka registry configuration (``{"url": ...,
    "basic.auth.user.info": ...}``), or an already built confluent-kafka ``SchemaRegistryClient``.
    """

    def __init__(
        self,
        registry: str | Mapping[str, Any] | ConfluentRegistryClient,
        *,
        timeout_s: float | None = None,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistryClient

        if isinstance(registry, ConfluentRegistryClient):
            self._client = registry
            conf: Mapping[str, Any] = registry.config()
        else:
            conf = {**DEFAULT_CONFIG, **({"url": registry} if isinstance(registry, str) else registry)}
            if timeout_s is not None:
                conf["timeout"] = timeout_s
            self._client = ConfluentRegistryClient(dict(conf))
        self.url = str(conf.get("url", "")).split(",")[0].rstrip("/")
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._unavailable_until = 0.0
        self._last_failure = ""
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (a JSON string) under ``subject``; return its global id.

        Idempotent on the registry side: an already registered schema returns its existing id.
        """
        cached = self._ids.get((subject, schema))
        if cached is not None:
            return cached
        self._check_cooldown()
        from confluent_kafka.schema_registry import Schema, SchemaRegistryError

        try:
            schema_id = self._client.register_schema(subject, Schema(schema, "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code >= 500 or exc.http_status_code in (408, 429):
                self._fail(f"HTTP {exc.http_status_code} registering {subject!r}: {exc.error_message}")
            raise RegistryRejectedError(
                f"registry refused schema for subject {subject!r}: {exc.http_status_code} "
                f"(error code {exc.error_code}) {exc.error_message}",
                exc.http_status_code,
            ) from None
        except Exception as exc:  # transport errors (httpx), malformed answers
            self._fail(f"{type(exc).__name__}: {exc}")
        if not isinstance(schema_id, int):
            self._fail(f"registry answered without an integer id for subject {subject!r}")
        self._ids[(subject, schema)] = schema_id
        self._schemas[schema_id] = schema
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        """Return the schema JSON string registered under ``schema_id``."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        self._check_cooldown()
        from confluent_kafka.schema_registry import SchemaRegistryError

        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404 or exc.error_code == SCHEMA_NOT_FOUND:
                raise UnknownSchemaError(f"schema id {schema_id} is not in the registry at {self.url}", b"") from None
            if exc.http_status_code >= 500:
                self._fail(f"HTTP {exc.http_status_code} looking up schema id {schema_id}: {exc.error_message}")
            raise RegistryUnavailableError(
                f"registry refused to look up schema id {schema_id}: {exc.http_status_code} {exc.error_message}", b""
            ) from None
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        if not isinstance(found.schema_str, str):
            raise RegistryUnavailableError(f"registry answered without a schema string for id {schema_id}", b"")
        self._schemas[schema_id] = found.schema_str
        return found.schema_str

    def close(self) -> None:
        self._client.close()

    def _check_cooldown(self) -> None:
        if self._clock() < self._unavailable_until:
            raise RegistryUnavailableError(
                f"schema registry unavailable (last failure: {self._last_failure}); retry later", b""
            )

    def _fail(self, reason: str) -> NoReturn:
        self._last_failure = reason
        self._unavailable_until = self._clock() + self._cooldown_s
        raise RegistryUnavailableError(f"schema registry at {self.url} unavailable: {reason}", b"")
