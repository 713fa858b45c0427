"""The spine's exceptions, under one root.

    BotstreamError
    ├── ConfigError            settings or bots file is wrong (names the key / bot / line)
    └── LauncherError          the embedded Kafka could not be had
        ├── JavaMissingError
        ├── JarResolveError    Maven could not resolve the broker's jars
        ├── PortTakenError
        └── BrokerStartError   the broker exited or never became ready

`retriable` tells callers (the retry chain, supervisors) whether trying again can help.
"""

from __future__ import annotations


class BotstreamError(Exception):
    retriable: bool = False


class ConfigError(BotstreamError):
    pass


class LauncherError(BotstreamError):
    pass


class JavaMissingError(LauncherError):
    pass


class JarResolveError(LauncherError):
    retriable = True


class PortTakenError(LauncherError):
    pass


class BrokerStartError(LauncherError):
    pass
