"""The .avsc files of this package: current schemas and every released version, parsed once.

Decoding needs all of them: a record on a topic may have been written by any released
version (a producer not yet upgraded, a replay of old data), and the single-object header
only carries the writer's fingerprint. So the library indexes every version by its
CRC-64-AVRO fingerprint of the Parsing Canonical Form and by full name.

Layout (see EVOLUTION.md)::

    schemas/<name>.avsc                 current schema, "botstream.version": N
    schemas/history/<name>/v<K>.avsc    frozen copy of each released version K (K = N included)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from botstream.schemas.errors import SchemaDefinitionError

__all__ = ["VERSION_ATTRIBUTE", "SchemaVersion", "SchemaLibrary", "describe_schema"]

#: Custom top-level attribute carrying the release number of a schema.
VERSION_ATTRIBUTE = "botstream.version"
_FINGERPRINT_ALGORITHM = "CRC-64-AVRO"


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One version of one record schema, with everything the codec derives from it."""

    name: str
    """Record name used across the project: the file stem (``update``, ``reply``, ...)."""
    version: int
    fullname: str
    definition: Mapping[str, Any]
    """The schema exactly as in the file (docs and custom attributes included)."""
    parsed: dict[str, Any]
    """fastavro ``parse_schema`` output; pass it to fastavro functions."""
    canonical_form: str
    fingerprint: bytes
    """8-byte CRC-64-AVRO of the canonical form, in the byte order the single-object header uses."""
    is_current: bool

    def to_json(self) -> str:
        """The schema as a JSON string, as registries expect it."""
        return json.dumps(self.definition, separators=(",", ":"))


def describe_schema(name: str, definition: Mapping[str, Any], *, is_current: bool) -> SchemaVersion:
    """Parse a schema definition and compute its canonical form and fingerprint.

    Public so tests and tools can describe schemas that are not files (e.g. a registry's copy).
    """
    try:
        parsed = parse_schema(dict(definition))
        canonical = to_parsing_canonical_form(dict(definition))
    except Exception as exc:  # fastavro raises several unrelated types for bad schemas
        raise SchemaDefinitionError(f"schema {name!r} does not parse: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaDefinitionError(f"schema {name!r} must be a record")
    version = definition.get(VERSION_ATTRIBUTE, 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise SchemaDefinitionError(f"schema {name!r}: {VERSION_ATTRIBUTE} must be an integer")
    return SchemaVersion(
        name=name,
        version=version,
        fullname=parsed["name"],
        definition=definition,
        parsed=parsed,
        canonical_form=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, _FINGERPRINT_ALGORITHM)),
        is_current=is_current,
    )


def _read(file: Traversable) -> dict[str, Any]:
    try:
        definition = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaDefinitionError(f"cannot read {file.name}: {exc}") from exc
    if not isinstance(definition, dict):
        raise SchemaDefinitionError(f"{file.name} must hold a JSON object")
    return definition


class SchemaLibrary:
    """All schema versions found in a directory laid out as described in the module docstring."""

    def __init__(self, directory: Traversable | Path | None = None) -> None:
        root: Traversable = directory if directory is not None else resources.files("schemas")
        self._current: dict[str, SchemaVersion] = {}
        self._history: dict[str, list[SchemaVersion]] = {}
        for file in sorted(root.iterdir(), key=lambda f: f.name):
            if file.is_file() and file.name.endswith(".avsc"):
                name = file.name.removesuffix(".avsc")
                self._current[name] = describe_schema(name, _read(file), is_current=True)
        history_root = root / "history"
        for name in self._current:
            self._history[name] = self._load_history(name, history_root / name)
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._by_fullname: dict[str, SchemaVersion] = {}
        for current in self._current.values():
            if current.fullname in self._by_fullname:
                raise SchemaDefinitionError(f"two schema files define {current.fullname}")
            self._by_fullname[current.fullname] = current
        for version in self.all_versions():
            # Current first (all_versions order), so an unchanged history copy maps to current.
            self._by_fingerprint.setdefault(version.fingerprint, version)

    @staticmethod
    def _load_history(name: str, directory: Traversable) -> list[SchemaVersion]:
        if not directory.is_dir():
            return []
        versions = []
        for file in directory.iterdir():
            stem = file.name.removesuffix(".avsc")
            if not (file.name.endswith(".avsc") and stem[:1] == "v" and stem[1:].isdigit()):
                continue
            version = describe_schema(name, _read(file), is_current=False)
            if version.version != int(stem[1:]):
                raise SchemaDefinitionError(
                    f"history/{name}/{file.name} declares {VERSION_ATTRIBUTE} {version.version}"
                )
            versions.append(version)
        return sorted(versions, key=lambda v: v.version)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._current)

    def current(self, name: str) -> SchemaVersion:
        try:
            return self._current[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r}; known: {', '.join(self._current)}") from None

    def history(self, name: str) -> list[SchemaVersion]:
        """Released versions of ``name``, oldest first."""
        return list(self._history.get(name, []))

    def all_versions(self) -> Iterator[SchemaVersion]:
        """Every current schema, then every history version."""
        yield from self._current.values()
        for versions in self._history.values():
            yield from versions

    def by_fingerprint(self, fingerprint: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fingerprint)

    def by_fullname(self, fullname: str) -> SchemaVersion | None:
        """The current schema whose record has this full name (``dev.botstream.Update``)."""
        return self._by_fullname.get(fullname)
