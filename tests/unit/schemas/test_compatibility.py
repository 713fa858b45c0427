"""Every current schema stays compatible, both ways, with every released version.

backward = a record written by the released version is read with the current schema;
forward  = a record written by the current schema is read by the released version.
The checker resolves real records with fastavro and names the field that breaks; the second
half of this file proves it does by breaking schemas on purpose.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from botstream.schemas.compatibility import Incompatibility, check_compatibility, resolution_problems
from botstream.schemas.library import SchemaLibrary
from botstream.schemas.records import RECORD_NAMES

# Deliberate, reviewed breaks: (record name, released version, direction, field). Keep empty
# unless a change cannot be made compatible (e.g. a new ConversationEvent payload branch rolled
# out reader-first, see EVOLUTION.md); remove the entry once that version leaves retention.
ACCEPTED_BREAKS: set[tuple[str, int, str, str]] = set()


def _released(library: SchemaLibrary) -> list[tuple[str, int]]:
    return [(name, v.version) for name in library.names for v in library.history(name)]


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_every_schema_has_released_versions(library: SchemaLibrary, name: str) -> None:
    assert library.history(name), f"no history/{name}/v*.avsc"


def test_current_schemas_are_compatible_with_every_released_version(library: SchemaLibrary) -> None:
    failures = []
    for name, version in _released(library):
        old = next(v for v in library.history(name) if v.version == version)
        problems = check_compatibility(old.definition, library.current(name).definition)
        failures += [
            f"{name} v{version} ↔ current: {p}"
            for p in problems
            if (name, version, p.direction, p.field) not in ACCEPTED_BREAKS
        ]
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------ the checker catches breakage


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


@pytest.fixture()
def update(library: SchemaLibrary) -> dict[str, Any]:
    return copy.deepcopy(dict(library.current("update").definition))


@pytest.fixture()
def event(library: SchemaLibrary) -> dict[str, Any]:
    return copy.deepcopy(dict(library.current("conversation_event").definition))


def _report(problems: list[Incompatibility]) -> set[tuple[str | None, str]]:
    return {(p.direction, p.field) for p in problems}


def test_adding_an_optional_field_with_a_default_is_compatible(update: dict[str, Any]) -> None:
    new = copy.deepcopy(update)
    new["fields"].append({"name": "edited_at_ms", "type": ["null", "long"], "default": None, "doc": "x"})
    assert check_compatibility(update, new) == []


def test_adding_a_field_without_default_breaks_backward_naming_it(update: dict[str, Any]) -> None:
    new = copy.deepcopy(update)
    new["fields"].append({"name": "tenant", "type": "string", "doc": "x"})
    problems = check_compatibility(update, new)
    assert _report(problems) == {("backward", "tenant")}
    assert "tenant" in str(problems[0]) and "no default" in problems[0].reason


def test_removing_a_required_field_breaks_forward_naming_it(update: dict[str, Any]) -> None:
    new = copy.deepcopy(update)
    new["fields"] = [f for f in new["fields"] if f["name"] != "correlation_id"]
    assert _report(check_compatibility(update, new)) == {("forward", "correlation_id")}


def test_changing_a_field_type_breaks_both_ways(update: dict[str, Any]) -> None:
    new = copy.deepcopy(update)
    _field(new, "received_at_ms")["type"] = "string"
    assert _report(check_compatibility(update, new)) == {
        ("backward", "received_at_ms"),
        ("forward", "received_at_ms"),
    }


def test_an_allowed_promotion_is_backward_only(update: dict[str, Any]) -> None:
    old = copy.deepcopy(update)
    _field(old, "platform_ts_ms")["type"] = ["null", "int"]
    # int → long widens (backward ok); long → int does not narrow (forward fails).
    assert _report(check_compatibility(old, update)) == {("forward", "platform_ts_ms<long>")}


def test_nested_record_field_is_named_with_its_path(update: dict[str, Any]) -> None:
    new = copy.deepcopy(update)
    attachment = _field(new, "attachments")["type"]["items"]
    _field(attachment, "kind")["type"] = "long"
    assert _report(check_compatibility(update, new)) == {
        ("backward", "attachments[].kind"),
        ("forward", "attachments[].kind"),
    }


def test_new_enum_symbol_without_default_breaks_forward(update: dict[str, Any]) -> None:
    old = copy.deepcopy(update)
    del _field(old, "platform")["type"]["default"]
    new = copy.deepcopy(old)
    _field(new, "platform")["type"]["symbols"].append("line")
    problems = check_compatibility(old, new)
    assert _report(problems) == {("forward", "platform")}
    assert "line" in problems[0].reason  # fastavro's own message names the symbol


def test_new_enum_symbol_with_default_is_compatible(update: dict[str, Any]) -> None:
    new = copy.deepcopy(update)
    _field(new, "kind")["type"]["symbols"].append("poll")
    assert check_compatibility(update, new) == []


def test_new_payload_branch_breaks_forward_naming_the_branch(event: dict[str, Any]) -> None:
    new = copy.deepcopy(event)
    _field(new, "payload")["type"].append(
        {
            "type": "record",
            "name": "Nudged",
            "doc": "x",
            "fields": [{"name": "by", "type": "string", "doc": "x"}],
        }
    )
    assert _report(check_compatibility(event, new)) == {("forward", "payload<Nudged>")}


def test_field_inside_a_payload_branch_is_named(event: dict[str, Any]) -> None:
    new = copy.deepcopy(event)
    planned = next(b for b in _field(new, "payload")["type"] if b["name"] == "ReplyPlanned")
    _field(planned, "chat_seq")["type"] = "int"
    assert _report(resolution_problems(writer=event, reader=new)) == {
        (None, "payload<ReplyPlanned>.chat_seq")
    }
    assert resolution_problems(writer=new, reader=event) == []  # int → long widens


def test_unparseable_schema_is_reported_not_raised(update: dict[str, Any]) -> None:
    broken = copy.deepcopy(update)
    _field(broken, "chat_id")["type"] = "no_such_type"
    problems = resolution_problems(writer=update, reader=broken)
    assert len(problems) == 1 and "does not parse" in problems[0].reason
