"""The token of the sandbox's control API.

What it guards: `GET/PUT /_sandbox/config` (the config holds the bots' tokens, though they are never
returned in clear, and a PUT can switch every send to 503) and the resets. What it does not: the
platform routes (they check the bots' own tokens, as the platforms do), `healthz`, and the read-only
views `deliveries`, `stats` and `upstream/stats` (what the bots sent, counters; no credential), so
the demo and dashboards keep reading them. The sandbox listens on 127.0.0.1 unless told otherwise,
and docker-compose publishes its port on the host's loopback only.

Where the token comes from: `BOTSTREAM_SANDBOX_TOKEN` (a literal, env:NAME or file:PATH); when unset,
`botstream sandbox` makes one at start, prints it, and writes it to `<data dir>/sandbox/control-<port>.token`
(mode 0600), where `SandboxClient` on the same machine finds it. Clients send it as
`Authorization: Bearer <token>` or `X-Sandbox-Token: <token>`.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from botstream.core.settings import Settings

__all__ = ["TOKEN_HEADER", "authorized", "client_token", "new_token", "token_file", "write_token_file"]

TOKEN_HEADER = "x-sandbox-token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_file(data_dir: Path, port: int) -> Path:
    return data_dir / "sandbox" / f"control-{port}.token"


def write_token_file(path: Path, token: str) -> None:
    """Write `token` readable by this user only (created with mode 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)


def client_token(base_url: str, settings: Settings | None = None) -> str | None:
    """The token a client of the sandbox at `base_url` should send: `BOTSTREAM_SANDBOX_TOKEN`, else
    the token file that sandbox wrote in the data dir, else None."""
    settings = settings if settings is not None else Settings.from_env()
    if settings.sandbox_token is not None:
        return settings.sandbox_token.reveal()
    port = urlsplit(base_url).port
    if port is None:
        return None
    try:
        return token_file(settings.data_dir, port).read_text().strip() or None
    except OSError:
        return None


def authorized(headers: Mapping[str, str], token: str) -> bool:
    """Does the request carry `token` (compared in constant time)?"""
    sent = headers.get(TOKEN_HEADER)
    if sent is None:
        auth = headers.get("authorization", "")
        sent = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return sent is not None and hmac.compare_digest(sent.encode(), token.encode())
