"""Checks a service runs before it starts, so what is wrong is said in one line with its own exit code
(`botstream.core.exitcodes`) instead of a traceback in a log file once Kafka and Faust are up:

- `bots(settings)`: the bots file loads (`BotsFileError`);
- `handlers(bots)`: every bot's handler imports and has a `bot = Bot()` (`HandlerError`, naming the
  bots file's line and the bot);
- `port(host, port, what)`: nothing listens there yet (`PortTakenError`);
- `broker(settings)`: a Kafka broker answers at the configured address (`BrokerUnavailableError`).

`botstream up` and `botstream config check` run the first two before starting anything; each service
command (`streams`, `sinks`, `ingest`, `sandbox`) runs what it needs.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from botstream.core.bots import BotRegistry, load_bots_file, load_service_bots
from botstream.core.errors import (
    BotsFileError,
    BrokerUnavailableError,
    ConfigError,
    HandlerError,
    PortTakenError,
)
from botstream.core.settings import Settings

if TYPE_CHECKING:
    from botstream.streams.handlers import Bot

BROKER_TIMEOUT_S = 10.0


def bots(settings: Settings, path: Path | None = None) -> BotRegistry:
    """The bots file (`path`, else BOTSTREAM_BOTS_FILE), loaded and its secrets registered for masking."""
    if path is not None:
        return load_bots_file(path)
    if settings.bots_file is None:
        raise BotsFileError("BOTSTREAM_BOTS_FILE is not set: point it at your bots file "
                            "(deploy/bots.example.toml is an example; `botstream new-bot NAME` writes one)")
    return load_service_bots(settings)


def handlers(registry: BotRegistry) -> dict[str, Bot]:
    """Import every bot's handler (the first failure raises, naming the bot); bot id -> its `Bot`."""
    from botstream.streams.handlers import load_bot

    loaded: dict[str, Bot] = {}
    for bot in registry.values():
        if not bot.handler:
            continue
        try:
            loaded[bot.id] = load_bot(bot.handler, bot.handler_dir)
        except HandlerError as exc:
            raise HandlerError(f"{bot.origin or f'bot {bot.id!r}'}: {exc}") from None
    return loaded


def port(host: str, number: int, what: str, setting: str | None = None) -> None:
    """Raise `PortTakenError` when `host:number` cannot be listened on (something else has it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no conflict
        try:
            sock.bind((host, number))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                change = f" (set {setting} or stop what uses it)" if setting else ""
                raise PortTakenError(f"{what}: port {number} on {host} is already in use{change}") from None
            raise PortTakenError(f"{what}: cannot listen on {host}:{number}: {exc.strerror}") from None


def broker(settings: Settings, timeout_s: float = BROKER_TIMEOUT_S) -> str:
    """The bootstrap address, once a broker answered a metadata request there; else
    `BrokerUnavailableError` saying where it looked and what happened."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from botstream.core.kafka import admin_config, bootstrap_servers, check_access, client_logger_config

    try:
        bootstrap = bootstrap_servers(settings)
    except ConfigError as exc:
        raise BrokerUnavailableError(str(exc)) from None
    refused = _all_refused(bootstrap)
    if refused:
        raise BrokerUnavailableError(f"no Kafka broker at {bootstrap}: {refused}")
    # A secured cluster: a wrong password or an untrusted CA is named by its setting (ConfigError),
    # not reported as "no broker"; with PLAINTEXT this returns at once.
    check_access(settings, bootstrap=bootstrap, timeout_s=timeout_s)
    admin = AdminClient(admin_config(settings, bootstrap=bootstrap, timeout_s=timeout_s, **client_logger_config()))
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        reason = err.str() if hasattr(err, "str") else str(err)
        raise BrokerUnavailableError(f"no Kafka broker answers at {bootstrap} within {timeout_s:g}s: {reason}") from None
    return bootstrap


def _all_refused(bootstrap: str) -> str | None:
    """A reason when no bootstrap address even accepts a TCP connection (fails fast on the common
    case, "nothing listens there"); None when one does, or when it cannot be told quickly."""
    reasons = []
    for address in bootstrap.split(","):
        host, _, number = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(number)), timeout=2.0):
                return None
        except ConnectionRefusedError:
            reasons.append("connection refused")
        except socket.gaierror as exc:
            reasons.append(f"cannot resolve {host!r} ({exc.strerror})")
        except (OSError, ValueError):
            return None  # a timeout or something unusual: let the Kafka client have its say
    return "; ".join(sorted(set(reasons)))
