"""Secrets that never print.

A `Secret` wraps a credential so that `repr`, `str`, f-strings, logging and `config show` see only a
mask; code that needs the value calls `reveal()` at the point of use.
"""

from __future__ import annotations

import os
from pathlib import Path

from botstream.core.errors import ConfigError

MASK = "**********"


class Secret:
    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self.source = source  # "literal", "env:NAME" or "file:PATH": safe to show

    def reveal(self) -> str:
        return self._value

    def reveal_bytes(self) -> bytes:
        return self._value.encode()

    def __repr__(self) -> str:
        return f"Secret({MASK}, source={self.source!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling a secret is almost always an accident (e.g. multiprocessing); keep it possible
        # but explicit about what travels.
        return (Secret, (self._value, self.source))


def resolve_secret(value: str, *, environ: dict[str, str] | None = None, base_dir: Path | None = None) -> Secret:
    """Resolve a credential written as a literal, `env:NAME` or `file:PATH`.

    Raises ConfigError (without the value) when the reference dangles.
    """
    env = os.environ if environ is None else environ
    if value.startswith("env:"):
        name = value[4:]
        if not name:
            raise ConfigError("empty env: reference")
        if name not in env:
            raise ConfigError(f"environment variable {name!r} is not set")
        return Secret(env[name], source=value)
    if value.startswith("file:"):
        path = Path(value[5:])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            return Secret(path.read_text().strip(), source=value)
        except OSError as exc:
            raise ConfigError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from None
    return Secret(value)
