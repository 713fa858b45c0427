"""botstream's exceptions: one root, and the core's own errors under it.

    BotstreamError
    ├── ConfigError            settings or bots file is wrong (names the key / bot / line)
    │   ├── BotsFileError      the bots file is missing, unreadable or invalid
    │   └── HandlerError       a bot's handler module cannot be imported or has no `bot`
    ├── BrokerUnavailableError no Kafka broker answers at the configured address
    └── LauncherError          the embedded Kafka could not be had
        ├── JavaMissingError
        ├── JarResolveError    Maven could not resolve the broker's jars
        ├── PortTakenError     a port botstream must listen on is taken (the broker's, or a service's)
        └── BrokerStartError   the broker exited or never became ready

The command line turns each into its own exit code (`botstream.core.exitcodes`, listed in docs/operations.md).

Each stage adds its own branch under `BotstreamError` (ingest's `IngestError`, the sinks'
`SinkError`, the integrations' `IntegrationError`); the wire contract's errors live in
`botstream.schemas.errors`, which imports nothing from here. Where a caller decides something on
whether trying again can help, the class says so with `retriable` (`schemas.errors.DecodeError`,
`ingest.sink.NotDurable`).
"""

from __future__ import annotations


class BotstreamError(Exception):
    """Root of every exception botstream raises on purpose (the CLI prints these without a traceback)."""


class ConfigError(BotstreamError):
    pass


class BotsFileError(ConfigError):
    pass


class HandlerError(ConfigError):
    pass


class BrokerUnavailableError(BotstreamError):
    pass


class LauncherError(BotstreamError):
    pass


class JavaMissingError(LauncherError):
    pass


class JarResolveError(LauncherError):
    pass


class PortTakenError(LauncherError):
    pass


class BrokerStartError(LauncherError):
    pass
