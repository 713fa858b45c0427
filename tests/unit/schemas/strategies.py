"""Hypothesis strategies generating values for any (parsed) Avro schema.

Values come in fastavro's writer input form (multi-record union values as ``(fullname, dict)``
tuples) so they can be fed to fastavro as the reference; :func:`to_project_form` converts them
to the shape our codec uses (``{"type": short name, ...}``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

_SIMPLE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "string": st.text(max_size=20),
    "bytes": st.binary(max_size=40),
}


def values(schema: Any, named: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(schema, str) and schema in named:
        return values(named[schema], named)
    if isinstance(schema, str):
        return _SIMPLE[schema]
    if isinstance(schema, list):
        branches = []
        records = [b for b in schema if _type(b, named) == "record"]
        for branch in schema:
            strategy = values(branch, named)
            if len(records) > 1 and _type(branch, named) == "record":
                name = named.get(branch, branch)["name"] if isinstance(branch, str) else branch["name"]
                strategy = strategy.map(functools.partial(_tag, name))
            branches.append(strategy)
        return st.one_of(branches)
    kind = schema["type"]
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), values(schema["values"], named), max_size=3)
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: values(f["type"], named) for f in schema["fields"]})
    raise ValueError(f"no strategy for {schema!r}")


def _tag(name: str, value: Any) -> tuple[str, Any]:
    return (name, value)


def _type(schema: Any, named: Mapping[str, Any]) -> str:
    if isinstance(schema, str):
        return str(named[schema]["type"]) if schema in named else schema
    return "union" if isinstance(schema, list) else str(schema["type"])


def to_project_form(value: Any) -> Any:
    if isinstance(value, tuple):
        fullname, record = value
        return {"type": fullname.rsplit(".", 1)[-1], **to_project_form(record)}
    if isinstance(value, dict):
        return {k: to_project_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_project_form(v) for v in value]
    return value


def records(parsed_schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Records of a fastavro-parsed record schema, in fastavro writer form."""
    return values(parsed_schema, parsed_schema["__named_schemas"])
