"""Fixtures for the schema/codec tests: no network except the in-test registry server."""

from __future__ import annotations

import pytest

from botstream.schemas.codec import Codec, default_library
from botstream.schemas.library import SchemaLibrary


@pytest.fixture(scope="session")
def library() -> SchemaLibrary:
    return default_library()


@pytest.fixture(scope="session")
def codec(library: SchemaLibrary) -> Codec:
    return Codec(library)
