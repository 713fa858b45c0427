"""Client for the few Confluent Schema Registry endpoints the codec needs.

- ``POST /subjects/{subject}/versions`` registers (or finds) a schema and returns its id;
- ``GET /schemas/ids/{id}`` returns the schema a Confluent-framed record was written with.

Ids never change meaning, so both directions are cached for the life of the process and the
registry is only called for a schema or id not seen before. Every call has a short timeout,
and after a failure the client fails fast for ``cooldown_s`` instead of making each record of
a batch wait for its own timeout. Failures are translated at this boundary into the package
errors: unreachable/5xx → RegistryUnavailableError (retriable), unknown id → UnknownSchemaError,
refused registration → RegistryRejectedError.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from botstream.schemas.errors import RegistryRejectedError, RegistryUnavailableError, UnknownSchemaError

__all__ = ["CONTENT_TYPE", "SchemaRegistryClient"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryClient:
    """Synchronous, caching registry client (calls are rare: once per schema or id)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        cooldown_s: float = 1.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 1.0)),
            headers={"Accept": f"{CONTENT_TYPE}, application/json"},
        )
        self._owns_client = client is None
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
        response = self._call(
            "POST",
            f"/subjects/{quote(subject, safe='')}/versions",
            content=json.dumps({"schema": schema}).encode(),
        )
        if response.status_code >= 400:
            raise RegistryRejectedError(
                f"registry refused schema for subject {subject!r}: "
                f"{response.status_code} {response.text[:300]}",
                response.status_code,
            )
        schema_id = self._json_field(response, "id")
        if not isinstance(schema_id, int):
            raise RegistryUnavailableError(
                f"registry answered without an integer id: {response.text[:300]}", b""
            )
        self._ids[(subject, schema)] = schema_id
        self._schemas[schema_id] = schema
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        """Return the schema JSON string registered under ``schema_id``."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        response = self._call("GET", f"/schemas/ids/{schema_id}")
        if response.status_code == 404:
            raise UnknownSchemaError(f"schema id {schema_id} is not in the registry at {self.url}", b"")
        if response.status_code >= 400:
            raise RegistryUnavailableError(
                f"registry refused to look up schema id {schema_id}: {response.status_code}", b""
            )
        schema = self._json_field(response, "schema")
        if not isinstance(schema, str):
            raise RegistryUnavailableError(
                f"registry answered without a schema string for id {schema_id}", b""
            )
        self._schemas[schema_id] = schema
        return schema

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _call(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        now = self._clock()
        if now < self._unavailable_until:
            raise RegistryUnavailableError(
                f"schema registry unavailable (last failure: {self._last_failure}); retry later", b""
            )
        try:
            response = self._client.request(
                method, self.url + path, content=content, headers={"Content-Type": CONTENT_TYPE}
            )
        except httpx.HTTPError as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        if response.status_code >= 500:
            self._fail(f"HTTP {response.status_code} from {method} {path}")
        return response

    def _fail(self, reason: str) -> NoReturn:
        self._last_failure = reason
        self._unavailable_until = self._clock() + self._cooldown_s
        raise RegistryUnavailableError(f"schema registry at {self.url} unavailable: {reason}", b"")

    @staticmethod
    def _json_field(response: httpx.Response, field: str) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise RegistryUnavailableError(
                f"registry answered non-JSON: {response.text[:300]}", b""
            ) from None
        return body.get(field) if isinstance(body, dict) else None
