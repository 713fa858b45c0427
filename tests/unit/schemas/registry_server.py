"""A tiny in-process Confluent Schema Registry: just the endpoints the codec uses.

Real HTTP on 127.0.0.1 (so confluent-kafka's client, its httpx session, timeouts, authentication
and status handling are exercised for real), with knobs to fail on purpose or to demand an
Authorization header, and counters to prove caching.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeRegistry:
    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: Counter[str] = Counter()
        self.content_types: list[str] = []
        self.fail_status: int | None = None
        self.reject_status: int | None = None
        self.required_auth: str | None = None  # an exact Authorization header, else 401
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                registry.requests["POST"] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                registry.content_types.append(self.headers.get("Content-Type", ""))
                registry.auth_headers.append(self.headers.get("Authorization", ""))
                if registry.required_auth and self.headers.get("Authorization") != registry.required_auth:
                    return self._send(401, {"error_code": 401, "message": "Unauthorized"})
                match = re.fullmatch(r"/subjects/([^/?]+)/versions(?:\?.*)?", self.path)
                if registry.fail_status:
                    return self._send(registry.fail_status, {"error_code": 50001, "message": "boom"})
                if registry.reject_status:
                    return self._send(registry.reject_status, {"error_code": 409, "message": "incompatible"})
                if match is None:
                    return self._send(404, {"error_code": 404, "message": "no route"})
                schema = json.loads(body)["schema"]
                self._send(200, {"id": registry.register(match.group(1), schema)})

            def do_GET(self) -> None:  # noqa: N802
                registry.requests["GET"] += 1
                registry.auth_headers.append(self.headers.get("Authorization", ""))
                if registry.required_auth and self.headers.get("Authorization") != registry.required_auth:
                    return self._send(401, {"error_code": 401, "message": "Unauthorized"})
                match = re.fullmatch(r"/schemas/ids/(\d+)(?:\?.*)?", self.path)
                if registry.fail_status:
                    return self._send(registry.fail_status, {"error_code": 50001, "message": "boom"})
                if match is None or int(match.group(1)) not in registry.schemas:
                    return self._send(404, {"error_code": 40403, "message": "Schema not found"})
                self._send(200, {"schema": registry.schemas[int(match.group(1))]})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def register(self, subject: str, schema: str) -> int:
        """Ids are global per schema text, as in the real registry (first id 100)."""
        with self._lock:
            schema_id = next((i for i, s in self.schemas.items() if s == schema), 100 + len(self.schemas))
            self.schemas[schema_id] = schema
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
