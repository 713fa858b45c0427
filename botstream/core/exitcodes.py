"""Exit codes of every `botstream` command, defined once (docs/operations.md's table is checked against it).

A command that fails on purpose raises a `BotstreamError` (or a wire-contract `SchemaError`); the
CLI prints its message on one line (`botstream: error: ...`) and exits with the code of the most
specific class below. Usage errors are argparse's own exit code 2 and nothing else is.
"""

from __future__ import annotations

from enum import IntEnum

from botstream.core.errors import (
    BotsFileError,
    BotstreamError,
    BrokerUnavailableError,
    ConfigError,
    HandlerError,
    LauncherError,
    PortTakenError,
)
from botstream.schemas.errors import RegistryRejectedError, RegistryUnavailableError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1          # the command ran and failed (e.g. `topics apply` errors, a child of `up` gave up)
    USAGE = 2           # bad command line (argparse)
    NOT_RUNNING = 3     # `kafka status`: the embedded broker is not running
    SETTINGS = 4        # a BOTSTREAM_* / KAFKA_* / SCHEMA_REGISTRY_* variable has a bad value
    BOTS_FILE = 5       # the bots file is missing, unreadable or invalid
    HANDLER = 6         # a bot's handler cannot be imported (or has no `bot = Bot()`)
    PORT_TAKEN = 7      # a port the service must listen on is taken
    NO_BROKER = 8       # no Kafka broker answers at the configured address
    KAFKA_LAUNCH = 9    # the embedded Kafka could not be started (Java, Maven, the broker itself)
    REGISTRY = 10       # the schema registry is unreachable or refused a schema
    INTERRUPTED = 130   # Ctrl-C


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "the command ran and failed (topics apply errors, a child of `up` gave up, demo got no 2xx)",
    ExitCode.USAGE: "bad command line (unknown command or option, bad option value)",
    ExitCode.NOT_RUNNING: "`kafka status`: the embedded broker is not running",
    ExitCode.SETTINGS: "a setting (environment variable) has a bad value",
    ExitCode.BOTS_FILE: "the bots file is missing, unreadable or invalid",
    ExitCode.HANDLER: "a bot's handler module cannot be imported or has no `bot = Bot()`",
    ExitCode.PORT_TAKEN: "a port the service must listen on is taken",
    ExitCode.NO_BROKER: "no Kafka broker answers at the configured address",
    ExitCode.KAFKA_LAUNCH: "the embedded Kafka could not be started (Java, Maven, the broker)",
    ExitCode.REGISTRY: "the schema registry is unreachable or refused a schema",
    ExitCode.INTERRUPTED: "stopped with Ctrl-C",
}

# most specific first
_BY_CLASS: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (HandlerError, ExitCode.HANDLER),
    (BotsFileError, ExitCode.BOTS_FILE),
    (ConfigError, ExitCode.SETTINGS),
    (PortTakenError, ExitCode.PORT_TAKEN),
    (BrokerUnavailableError, ExitCode.NO_BROKER),
    (LauncherError, ExitCode.KAFKA_LAUNCH),
    (RegistryUnavailableError, ExitCode.REGISTRY),
    (RegistryRejectedError, ExitCode.REGISTRY),
    (BotstreamError, ExitCode.FAILED),
)


def exit_code_for(exc: BaseException) -> ExitCode:
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    return ExitCode.FAILED


def markdown_table() -> str:
    """The exit code table of docs/operations.md."""
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| {int(code)} | {MEANING[code]} |" for code in ExitCode]
    return "\n".join(rows)
