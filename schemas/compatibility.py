"""Is a schema change safe? Checked by actually resolving records, and reported per field.

Two directions matter on Kafka, because producers and consumers upgrade at different times
and topics keep old records:

- **backward** — records written with the *old* schema are read with the *new* one
  (new consumers, old data or old producers);
- **forward** — records written with the *new* schema are read with the *old* one
  (new producers, consumers not yet upgraded).

The verdict comes from fastavro's schema resolution, not from re-implemented rules:
representative records generated from the writer schema (every enum symbol, every union
branch, null and non-null, empty and non-empty collections) are encoded with the writer and
decoded with the reader. When that fails, the same test runs field by field (recursing into
nested records, arrays, maps and union branches) so the report names the field, e.g.
``attachments[].size`` or ``payload<ReplyPlanned>.chat_seq``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer

__all__ = ["Incompatibility", "resolution_problems", "check_compatibility"]

Direction = Literal["backward", "forward"]
_NAMED = {"record", "enum", "fixed"}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "string", "bytes"}
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason records cannot cross between two schema versions."""

    field: str
    """Dotted path of the offending field ('' = the record as a whole)."""
    reason: str
    direction: Direction | None = None

    def __str__(self) -> str:
        where = self.field or "<record>"
        prefix = f"{self.direction}: " if self.direction else ""
        return f"{prefix}{where}: {self.reason}"


def check_compatibility(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Incompatibility]:
    """Problems in both directions between two versions of one record schema; [] = compatible."""
    problems = [
        Incompatibility(p.field, p.reason, "backward") for p in resolution_problems(writer=old, reader=new)
    ]
    problems += [
        Incompatibility(p.field, p.reason, "forward") for p in resolution_problems(writer=new, reader=old)
    ]
    return problems


def resolution_problems(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> list[Incompatibility]:
    """Why records written with ``writer`` cannot be read with ``reader``; [] = they can."""
    try:
        w = cast(dict[str, Any], parse_schema(dict(writer)))
        r = cast(dict[str, Any], parse_schema(dict(reader)))
    except Exception as exc:
        return [Incompatibility("", f"schema does not parse: {exc}")]
    failure = _round_trip(w, r, _samples(w, w["__named_schemas"], ()))
    if failure is None:
        return []
    located = _locate(_Side(w, w["__named_schemas"]), _Side(r, r["__named_schemas"]), "")
    return located or [Incompatibility("", failure)]


@dataclass(frozen=True)
class _Side:
    schema: Any
    named: Mapping[str, Any]

    def resolved(self) -> Any:
        """The schema with a named reference followed and a primitive annotation dropped."""
        s = self.schema
        if isinstance(s, str):
            return self.named.get(s, s)
        if isinstance(s, dict) and s.get("type") in _PRIMITIVES:
            return s["type"]
        return s

    def at(self, schema: Any) -> _Side:
        return _Side(schema, self.named)


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _matches(w: Any, r: Any) -> bool:
    """Avro's 'schemas match' rule, used only to pair up fields and union branches."""
    wk, rk = _kind(w), _kind(r)
    if wk in _NAMED and wk == rk:
        aliases = {_short(a) for a in r.get("aliases", [])}
        return _short(w["name"]) == _short(r["name"]) or _short(w["name"]) in aliases
    return wk == rk or rk in _PROMOTIONS.get(wk, set())


def _locate(w: _Side, r: _Side, path: str) -> list[Incompatibility]:
    """Walk both schemas together and test each leaf pair with fastavro."""
    ws, rs = w.resolved(), r.resolved()
    wk, rk = _kind(ws), _kind(rs)
    if wk == "union" or rk == "union":
        return _locate_union(w, r, path)
    if wk == rk == "record":
        return _locate_record(w.at(ws), r.at(rs), path)
    if wk == rk == "array":
        return _locate(w.at(ws["items"]), r.at(rs["items"]), f"{path}[]")
    if wk == rk == "map":
        return _locate(w.at(ws["values"]), r.at(rs["values"]), f"{path}{{}}")
    if "record" in (wk, rk) or not _matches(ws, rs):
        return [Incompatibility(path, f"type changed from {wk} to {rk}")]
    failure = _round_trip(_probe(w), _probe(r), [{"v": s} for s in _samples(ws, w.named, ())])
    return [] if failure is None else [Incompatibility(path, failure)]


def _locate_record(w: _Side, r: _Side, path: str) -> list[Incompatibility]:
    problems: list[Incompatibility] = []
    writer_fields = {f["name"]: f for f in w.schema["fields"]}
    for field in r.schema["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        match = next((writer_fields[n] for n in names if n in writer_fields), None)
        where = _join(path, field["name"])
        if match is None:
            if "default" not in field:
                problems.append(
                    Incompatibility(where, "the reader requires it (no default) but the writer lacks it")
                )
            continue
        problems += _locate(w.at(match["type"]), r.at(field["type"]), where)
    return problems


def _locate_union(w: _Side, r: _Side, path: str) -> list[Incompatibility]:
    ws, rs = w.resolved(), r.resolved()
    reader_branches = [r.at(b) for b in (rs if isinstance(rs, list) else [rs])]
    problems: list[Incompatibility] = []
    for branch in ws if isinstance(ws, list) else [ws]:
        wb = w.at(branch)
        resolved = wb.resolved()
        label = _short(resolved["name"]) if _kind(resolved) in _NAMED else _kind(resolved)
        where = f"{path}<{label}>" if isinstance(ws, list) else path
        match = next((rb for rb in reader_branches if _matches(resolved, rb.resolved())), None)
        if match is None:
            problems.append(
                Incompatibility(where, f"the reader has no union branch for the writer's {label}")
            )
        else:
            problems += _locate(wb, match, where)
    return problems


def _inline(schema: Any, named: Mapping[str, Any], defined: set[str]) -> Any:
    """Copy ``schema`` with named references replaced by their definition at first use."""
    if isinstance(schema, str):
        if schema in named and schema not in defined:
            return _inline(named[schema], named, defined)
        return schema
    if isinstance(schema, list):
        return [_inline(s, named, defined) for s in schema]
    out = {k: v for k, v in schema.items() if not k.startswith("__")}
    if out.get("type") in _NAMED:
        defined.add(out["name"])
    if "items" in out:
        out["items"] = _inline(out["items"], named, defined)
    if "values" in out:
        out["values"] = _inline(out["values"], named, defined)
    if "fields" in out:
        out["fields"] = [{**f, "type": _inline(f["type"], named, defined)} for f in out["fields"]]
    return out


def _probe(side: _Side) -> Any:
    """A one-field record around a leaf type, so fastavro can resolve that type alone."""
    field_type = _inline(side.schema, side.named, set())
    return parse_schema(
        {"type": "record", "name": "botstream_probe", "fields": [{"name": "v", "type": field_type}]}
    )


def _round_trip(writer: Any, reader: Any, samples: list[Any]) -> str | None:
    """First failure message of encoding ``samples`` with ``writer`` and reading with ``reader``."""
    for sample in samples:
        buffer = io.BytesIO()
        try:
            schemaless_writer(buffer, writer, sample)
        except Exception as exc:  # the sample generator failed the writer: report, don't hide
            return f"cannot write a sample with the writer schema: {type(exc).__name__}: {exc}"
        buffer.seek(0)
        try:
            schemaless_reader(buffer, writer, reader)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


def _samples(schema: Any, named: Mapping[str, Any], stack: tuple[str, ...]) -> list[Any]:
    """Representative values of ``schema`` in fastavro's writer input form."""
    if isinstance(schema, str) and schema in named:
        return _samples(named[schema], named, stack)
    kind = _kind(schema)
    simple: dict[str, list[Any]] = {
        "null": [None],
        "boolean": [False, True],
        "int": [0, -1, 2**31 - 1],
        "long": [0, -1, 2**53],
        "float": [1.5],
        "double": [1.5],
        "string": ["", "sample ☃"],
        "bytes": [b"", b"\x00\xff"],
    }
    if kind in simple:
        return simple[kind]
    if kind == "fixed":
        return [b"\x00" * int(schema["size"])]
    if kind == "enum":
        return list(schema["symbols"])
    if kind == "array":
        return [[], _samples(schema["items"], named, stack)]
    if kind == "map":
        return [{}, {f"k{i}": v for i, v in enumerate(_samples(schema["values"], named, stack))}]
    if kind == "union":
        values: list[Any] = []
        for branch in schema:
            target = named.get(branch, branch) if isinstance(branch, str) else branch
            branch_values = _samples(target, named, stack)
            if _kind(target) == "record":
                branch_values = [(target["name"], v) for v in branch_values]
            values += branch_values
        return values
    if kind == "record":
        if schema["name"] in stack:
            raise ValueError(f"recursive schema {schema['name']} is not supported by the checker")
        per_field = {
            f["name"]: _samples(f["type"], named, (*stack, schema["name"])) for f in schema["fields"]
        }
        count = max((len(v) for v in per_field.values()), default=1)
        return [{name: vals[i % len(vals)] for name, vals in per_field.items()} for i in range(count)]
    # {"type": "long", "logicalType": ...} and similar annotated primitives
    if isinstance(schema, dict) and isinstance(schema.get("type"), str):
        return _samples(schema["type"], named, stack)
    raise ValueError(f"cannot generate samples for {schema!r}")
