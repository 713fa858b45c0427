"""Correlation ids and traceparents: what is kept from the caller and what is minted here."""

from __future__ import annotations

import re

import pytest

from botstream.ingest.correlation import correlation_id_from, traceparent_from

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("header", ["abc", "req-1.2_3", "a" * 128, "Root=1-5759e988-bd862e3fe1be46a994272793"])
def test_plain_request_ids_are_kept(header: str) -> None:
    assert correlation_id_from(header) == header


@pytest.mark.parametrize("header", [None, "", "a" * 129, "has space", "new\nline", "ünïcode", "x\"y"])
def test_other_request_ids_are_replaced_by_a_random_one(header: str | None) -> None:
    minted = correlation_id_from(header)
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    assert minted != correlation_id_from(header)


def test_valid_traceparent_is_passed_through() -> None:
    assert traceparent_from(VALID) == VALID
    assert traceparent_from(f"  {VALID} ") == VALID


def test_future_versions_keep_their_first_four_fields() -> None:
    assert traceparent_from("01" + VALID[2:] + "-extra") == "01" + VALID[2:]


@pytest.mark.parametrize("header", [
    None, "", "garbage", VALID.upper(), "ff" + VALID[2:], VALID + "-extra",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
])
def test_invalid_traceparent_starts_a_new_sampled_trace(header: str | None) -> None:
    minted = traceparent_from(header)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", minted)
    assert minted != header
