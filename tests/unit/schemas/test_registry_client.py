"""Confluent wire format through a real (in-test) registry server, and registry failures."""

from __future__ import annotations

import copy
import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from botstream.schemas.codec import Codec
from botstream.schemas.errors import (
    EncodeError,
    RegistryRejectedError,
    RegistryUnavailableError,
    UnknownSchemaError,
)
from botstream.schemas.framing import confluent_header
from botstream.schemas.library import SchemaLibrary
from botstream.schemas.registry import CONTENT_TYPE, SchemaRegistryClient
from tests.unit.schemas import samples
from tests.unit.schemas.registry_server import FakeRegistry

TOPICS = {"update": "botstream.updates", "reply": "botstream.replies"}


@pytest.fixture()
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as server:
        yield server


def _codec(url: str, **client_options: Any) -> Codec:
    return Codec(registry=SchemaRegistryClient(url, **client_options), topics=TOPICS)


def test_encode_registers_under_topic_value_and_writes_confluent_framing(registry: FakeRegistry) -> None:
    codec = _codec(registry.url)
    data = codec.encode("update", samples.update())
    schema_id = registry.subjects["botstream.updates-value"][0]
    assert data[:5] == b"\x00" + schema_id.to_bytes(4, "big")
    assert json.loads(registry.schemas[schema_id])["name"] == "Update"
    assert registry.content_types == [CONTENT_TYPE]
    codec.encode("update", samples.rich_update())
    assert registry.requests["POST"] == 1  # id cached
    assert codec.decode("update", data) == samples.update()
    assert registry.requests["GET"] == 0  # the id we registered is known in both directions


def test_retry_topics_get_their_own_subject(registry: FakeRegistry) -> None:
    codec = _codec(registry.url)
    first = codec.encode("reply", samples.reply())
    retry = codec.encode("reply", samples.reply(), topic="botstream.replies.retry.1")
    assert set(registry.subjects) == {"botstream.replies-value", "botstream.replies.retry.1-value"}
    assert first == retry  # same schema → same global id


def test_a_fresh_decoder_fetches_the_schema_once(registry: FakeRegistry) -> None:
    data = _codec(registry.url).encode("update", samples.update())
    reader = _codec(registry.url)
    for _ in range(3):
        assert reader.decode("update", data) == samples.update()
    assert registry.requests["GET"] == 1


def test_decoder_reads_single_object_framing_with_a_registry_configured(registry: FakeRegistry) -> None:
    single_object = Codec().encode("reply", samples.reply())
    assert _codec(registry.url).decode("reply", single_object) == samples.reply()
    assert sum(registry.requests.values()) == 0


def test_register_schemas_warms_up_every_topic(registry: FakeRegistry) -> None:
    codec = _codec(registry.url)
    codec.register_schemas()
    assert set(registry.subjects) == {"botstream.updates-value", "botstream.replies-value"}
    codec.encode("update", samples.update())
    assert registry.requests["POST"] == 2


def test_encode_without_a_known_topic(registry: FakeRegistry) -> None:
    with pytest.raises(EncodeError, match="no topic is known"):
        _codec(registry.url).encode("delivery_result", samples.delivery_result())


def test_newer_writer_known_only_to_the_registry_is_resolved(
    registry: FakeRegistry, library: SchemaLibrary
) -> None:
    """Forward compatibility through the registry: a producer one release ahead."""
    newer = copy.deepcopy(dict(library.current("update").definition))
    newer["fields"].append({"name": "edited", "type": "boolean", "default": False, "doc": "x"})
    schema_id = registry.register("botstream.updates-value", json.dumps(newer))
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(newer), {**samples.update(), "edited": True})
    assert (
        _codec(registry.url).decode("update", confluent_header(schema_id) + body.getvalue())
        == samples.update()
    )


def test_registry_schema_of_an_unknown_record(registry: FakeRegistry) -> None:
    schema_id = registry.register(
        "other-value", json.dumps({"type": "record", "name": "x.Other", "fields": []})
    )
    data = confluent_header(schema_id)
    with pytest.raises(UnknownSchemaError, match="x.Other") as caught:
        _codec(registry.url).decode_any(data)
    assert caught.value.raw == data


def test_unknown_schema_id(registry: FakeRegistry) -> None:
    data = confluent_header(4242) + b"\x00"
    with pytest.raises(UnknownSchemaError, match="4242") as caught:
        _codec(registry.url).decode_any(data)
    assert caught.value.raw == data and not caught.value.retriable


def test_registry_5xx_is_retriable_and_fails_fast_during_cooldown(registry: FakeRegistry) -> None:
    now = [1000.0]
    codec = _codec(registry.url, cooldown_s=5.0, clock=lambda: now[0])
    data = confluent_header(100) + b"\x00"
    registry.fail_status = 503
    with pytest.raises(RegistryUnavailableError, match="503") as caught:
        codec.decode_any(data)
    assert caught.value.retriable and caught.value.raw == data
    tried = registry.requests["GET"]
    assert tried == 2  # the client's own retry (max.retries 1), then the error
    registry.fail_status = None
    with pytest.raises(RegistryUnavailableError, match="retry later"):
        codec.decode_any(data)
    assert registry.requests["GET"] == tried  # cooldown: no request at all
    now[0] += 5.0
    with pytest.raises(UnknownSchemaError):  # registry back; id 100 does not exist there
        codec.decode_any(data)
    assert registry.requests["GET"] == tried + 1


def test_registry_rejecting_a_schema(registry: FakeRegistry) -> None:
    registry.reject_status = 409
    with pytest.raises(RegistryRejectedError, match="409") as caught:
        _codec(registry.url).encode("update", samples.update())
    assert caught.value.status_code == 409 and not caught.value.retriable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_registry_is_a_typed_retriable_error() -> None:
    codec = _codec(f"http://127.0.0.1:{_free_port()}", timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="ConnectError") as caught:
        codec.decode_any(confluent_header(1) + b"\x00")
    assert caught.value.retriable
    with pytest.raises(RegistryUnavailableError):
        codec.encode("update", samples.update())
    assert time.monotonic() - started < 3


def test_a_registry_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never responds
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        codec = _codec(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError, match="Timeout"):
            codec.encode("update", samples.update())
        assert time.monotonic() - started < 2
