"""`python -m botstream.sandbox` / `botstream sandbox`: serve the platform sandbox on one port."""

from __future__ import annotations

import argparse
import sys

from botstream.core.errors import ConfigError as SettingsError
from botstream.core.exitcodes import ExitCode
from botstream.core.settings import Settings
from botstream.sandbox.auth import new_token, token_file, write_token_file
from botstream.sandbox.config import ConfigError, SandboxConfig
from botstream.sandbox.server import serve

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="Local HTTP server emulating the Telegram, Slack, Discord and WhatsApp send APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--config", metavar="FILE", help="TOML (.toml) or JSON config file")
    parser.add_argument("--seed", type=int, help="override the config's fault seed")
    parser.add_argument("--no-limits", action="store_true", help="disable every platform's rate limits")
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)
    try:
        config = SandboxConfig.load(args.config) if args.config else SandboxConfig()
        if args.seed is not None:
            config = config.merged({"seed": args.seed})
    except ConfigError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return ExitCode.SETTINGS
    if args.no_limits:
        config = config.with_limits_disabled()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return ExitCode.SETTINGS
    if settings.sandbox_token is not None:
        token = settings.sandbox_token.reveal()
    else:  # made here, printed once, and left where clients on this machine find it
        token = new_token()
        path = token_file(settings.data_dir, args.port)
        write_token_file(path, token)
        print(f"sandbox control token: {token} (also in {path}; set BOTSTREAM_SANDBOX_TOKEN to choose it)",
              file=sys.stderr, flush=True)
    print(f"sandbox listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    serve(args.host, args.port, config, log_level=args.log_level, control_token=token)
    return 0
