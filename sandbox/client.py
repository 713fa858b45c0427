"""A small synchronous client for the control API, so tests of other stages read deliveries and
stats without repeating URLs and JSON plumbing. It sends the control token (`botstream.sandbox.auth`):
the one given, else `BOTSTREAM_SANDBOX_TOKEN`, else the token file the sandbox at that port wrote."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from botstream.sandbox.auth import client_token

__all__ = ["SandboxClient"]


class SandboxClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 5.0) -> None:
        token = token if token is not None else client_token(base_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/_sandbox", timeout=timeout, headers=headers)

    def healthz(self) -> bool:
        return self._http.get("/healthz").json().get("ok") is True

    def deliveries(
        self, platform: str | None = None, bot: str | None = None, chat: str | int | None = None
    ) -> list[dict[str, Any]]:
        """Accepted messages in arrival order; each has platform, bot, chat, method, text,
        message_id, seq, arrival_ms, index."""
        query = {
            k: str(v) for k, v in (("platform", platform), ("bot", bot), ("chat", chat)) if v is not None
        }
        return list(self._get("/deliveries", query)["deliveries"])

    def stats(self) -> dict[str, Any]:
        return self._get("/stats")

    def reset(self) -> None:
        self._http.post("/reset").raise_for_status()

    def upstream_stats(self) -> dict[str, Any]:
        """The generic upstream's requests, outcomes, in-flight and peak concurrency per name."""
        return self._get("/upstream/stats")

    def upstream_reset(self) -> None:
        self._http.post("/upstream/reset").raise_for_status()

    def config(self) -> dict[str, Any]:
        return self._get("/config")

    def patch_config(self, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch; raises `httpx.HTTPStatusError` (400) for an invalid config."""
        resp = self._http.put("/config", json=patch)
        resp.raise_for_status()
        return dict(resp.json())

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        resp = self._http.get(path, params=params)
        resp.raise_for_status()
        return dict(resp.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
