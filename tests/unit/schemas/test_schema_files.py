"""The .avsc files follow the house rules (EVOLUTION.md) and agree with botstream.schemas.records."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any, get_args

import pytest

from botstream.schemas import records
from botstream.schemas.library import VERSION_ATTRIBUTE, SchemaLibrary

SHARED_ENUMS = {
    "dev.botstream.Platform": records.Platform,
    "dev.botstream.ChatType": records.ChatType,
    "dev.botstream.UpdateKind": records.UpdateKind,
    "dev.botstream.ReplyKind": records.ReplyKind,
    "dev.botstream.DeliveryOutcome": records.DeliveryOutcome,
}
TYPED_DICTS = {
    "update": records.Update,
    "conversation_event": records.ConversationEvent,
    "reply": records.Reply,
    "delivery_result": records.DeliveryResult,
    "quarantine": records.QuarantineRecord,
}


def _named_types(schema: Any) -> Iterator[dict[str, Any]]:
    """Every inline named-type definition in a raw schema."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            yield schema
        for key in ("items", "values"):
            if key in schema:
                yield from _named_types(schema[key])
        for field in schema.get("fields", []):
            yield from _named_types(field["type"])


def test_record_names_match_the_files(library: SchemaLibrary) -> None:
    assert set(library.names) == set(records.RECORD_NAMES) == set(TYPED_DICTS)


@pytest.mark.parametrize("name", records.RECORD_NAMES)
def test_every_record_and_field_has_a_doc(library: SchemaLibrary, name: str) -> None:
    definition = library.current(name).definition
    assert definition["namespace"] == "dev.botstream"
    assert isinstance(definition[VERSION_ATTRIBUTE], int) and definition[VERSION_ATTRIBUTE] >= 1
    undocumented = []
    for named in _named_types(definition):
        if not named.get("doc"):
            undocumented.append(named["name"])
        undocumented += [f"{named['name']}.{f['name']}" for f in named.get("fields", []) if not f.get("doc")]
    assert not undocumented, f"missing doc: {undocumented}"


@pytest.mark.parametrize("name", records.RECORD_NAMES)
def test_enums_are_lowercase_with_a_default(library: SchemaLibrary, name: str) -> None:
    for named in _named_types(library.current(name).definition):
        if named["type"] == "enum":
            assert all(s == s.lower() for s in named["symbols"]), named["name"]
            assert named.get("default") in named["symbols"], f"{named['name']} needs a default symbol"


@pytest.mark.parametrize("name", records.RECORD_NAMES)
def test_time_fields_are_plain_long_milliseconds(library: SchemaLibrary, name: str) -> None:
    for named in _named_types(library.current(name).definition):
        for field in named.get("fields", []):
            assert "logicalType" not in json.dumps(field["type"]), field["name"]
            if field["name"].endswith("_ms"):
                assert field["type"] in ("long", ["null", "long"]), field["name"]


def test_shared_enums_are_identical_across_files_and_match_the_literals(library: SchemaLibrary) -> None:
    seen: dict[str, list[str]] = {}
    for name in library.names:
        for named in _named_types(library.current(name).definition):
            if named["type"] != "enum":
                continue
            fullname = f"dev.botstream.{named['name']}"
            symbols = list(named["symbols"])
            assert seen.setdefault(fullname, symbols) == symbols, f"{fullname} differs in {name}.avsc"
    assert set(seen) == set(SHARED_ENUMS)
    for fullname, literal in SHARED_ENUMS.items():
        assert list(get_args(literal)) == seen[fullname], fullname


@pytest.mark.parametrize("name", records.RECORD_NAMES)
def test_typed_dicts_have_exactly_the_schema_fields(library: SchemaLibrary, name: str) -> None:
    fields = [f["name"] for f in library.current(name).definition["fields"]]
    hints = typing.get_type_hints(TYPED_DICTS[name])
    assert list(hints) == fields


def test_payload_typed_dicts_match_the_union_branches(library: SchemaLibrary) -> None:
    payload = next(
        f for f in library.current("conversation_event").definition["fields"] if f["name"] == "payload"
    )
    branches = {b["name"]: [f["name"] for f in b["fields"]] for b in payload["type"]}
    typed = {get_args(typing.get_type_hints(t)["type"])[0]: t for t in get_args(records.EventPayload)}
    assert set(typed) == set(branches)
    for branch, fields in branches.items():
        assert list(typing.get_type_hints(typed[branch]))[1:] == fields, branch


@pytest.mark.parametrize("name", records.RECORD_NAMES)
def test_current_schema_is_frozen_in_history(library: SchemaLibrary, name: str) -> None:
    """Editing a schema without bumping botstream.version and freezing a copy fails here."""
    current = library.current(name)
    versions = {v.version: v for v in library.history(name)}
    assert current.version in versions, f"history/{name}/v{current.version}.avsc is missing"
    assert versions[current.version].definition == current.definition, (
        f"{name}.avsc differs from history/{name}/v{current.version}.avsc: bump {VERSION_ATTRIBUTE} "
        "and freeze the new version (EVOLUTION.md)"
    )
    assert max(versions) == current.version
    assert sorted(versions) == list(range(1, current.version + 1)), "a released version was deleted"


def test_library_maps_every_fingerprint_to_a_version(library: SchemaLibrary) -> None:
    for version in library.all_versions():
        found = library.by_fingerprint(version.fingerprint)
        assert found is not None and found.name == version.name
    update = library.current("update")
    assert library.by_fullname("dev.botstream.Update") is update
    assert len(update.fingerprint) == 8
