"""The platform sandbox: a real local HTTP server that behaves like the Telegram, Slack, Discord
and WhatsApp send APIs — their success and error shapes, their rate limits and failure signals,
plus injected faults — and records what it accepted so tests can check delivery and order.

Layout: `limits`, `faults`, `platforms/*`, `ledger` and `engine` are sans-IO (clock passed in);
`upstream` is the generic external API at `/upstream/{name}/...` that bots' integrations are tested
against; `asgi` is the thin ASGI shell; `server` runs it on uvicorn; `control` is the `/_sandbox/` API.
"""

from botstream.sandbox.asgi import SandboxApp
from botstream.sandbox.cli import main
from botstream.sandbox.client import SandboxClient
from botstream.sandbox.clock import ManualClock
from botstream.sandbox.config import (
    ConfigError,
    FaultConfig,
    LatencySpec,
    LimitsConfig,
    SandboxConfig,
    UpstreamConfig,
)
from botstream.sandbox.engine import SEQ_HEADER, SandboxEngine
from botstream.sandbox.identity import bot_identity
from botstream.sandbox.server import SandboxServer, build_app, run_sandbox_in_thread, serve

__all__ = [
    "SEQ_HEADER",
    "ConfigError",
    "FaultConfig",
    "LatencySpec",
    "LimitsConfig",
    "ManualClock",
    "SandboxApp",
    "SandboxClient",
    "SandboxConfig",
    "SandboxEngine",
    "SandboxServer",
    "UpstreamConfig",
    "bot_identity",
    "build_app",
    "main",
    "run_sandbox_in_thread",
    "serve",
]
