"""The registry through confluent-kafka's client: authentication from the settings (basic auth, a
bearer token, credentials in the URL), configuration errors named, and the wire format unchanged —
byte for byte, and readable by confluent-kafka's own Avro serializer and deserializer."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from botstream.core.codec import codec_for, registry_config
from botstream.core.errors import ConfigError
from botstream.core.settings import Settings
from botstream.schemas.codec import Codec
from botstream.schemas.errors import RegistryRejectedError
from botstream.schemas.framing import SINGLE_OBJECT_HEADER_SIZE, confluent_header
from tests.unit.schemas import samples
from tests.unit.schemas.registry_server import FakeRegistry


@pytest.fixture()
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as server:
        yield server


def _settings(url: str, **env: str) -> Settings:
    return Settings.from_env({"SCHEMA_REGISTRY_URL": url, **env})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_from_an_env_reference(registry: FakeRegistry) -> None:
    registry.required_auth = _basic("sr-user", "sr-pass-1")
    settings = _settings(registry.url, BOTSTREAM_SCHEMA_REGISTRY_USER="sr-user",
                         BOTSTREAM_SCHEMA_REGISTRY_PASSWORD="env:SR_PASSWORD", SR_PASSWORD="sr-pass-1")
    codec = codec_for(settings, records=["update"])
    data = codec.encode("update", samples.update())
    assert data[:5] == confluent_header(registry.subjects["botstream.updates-value"][0])
    assert set(registry.auth_headers) == {registry.required_auth}
    assert "sr-pass-1" not in repr(settings.as_dict())


def test_bearer_token_from_a_file(registry: FakeRegistry, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-abc-123\n")
    registry.required_auth = "Bearer tok-abc-123"
    settings = _settings(registry.url, BOTSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN=f"file:{tmp_path / 'token'}",
                         BOTSTREAM_SCHEMA_REGISTRY_LOGICAL_CLUSTER="lsrc-1")
    conf = registry_config(settings)
    assert conf["bearer.auth.credentials.source"] == "STATIC_TOKEN" and conf["bearer.auth.logical.cluster"] == "lsrc-1"
    reader = codec_for(settings, records=["reply"])
    data = reader.encode("reply", samples.reply())
    assert Codec().decode("reply", Codec().encode("reply", samples.reply())) == reader.decode("reply", data)
    assert set(registry.auth_headers) == {"Bearer tok-abc-123"}


def test_credentials_in_the_url_still_work(registry: FakeRegistry) -> None:
    registry.required_auth = _basic("u", "p@ss")
    url = registry.url.replace("http://", "http://u:p%40ss@")
    codec_for(_settings(url), records=["update"]).encode("update", samples.update())
    assert set(registry.auth_headers) == {registry.required_auth}


def test_wrong_credentials_are_a_refusal_not_an_outage(registry: FakeRegistry) -> None:
    registry.required_auth = _basic("sr-user", "right")
    settings = _settings(registry.url, BOTSTREAM_SCHEMA_REGISTRY_USER="sr-user", BOTSTREAM_SCHEMA_REGISTRY_PASSWORD="wrong")
    with pytest.raises(RegistryRejectedError, match="401") as caught:
        codec_for(settings, records=["update"])
    assert caught.value.status_code == 401 and "wrong" not in str(caught.value)


@pytest.mark.parametrize(("env", "message"), [
    ({"BOTSTREAM_SCHEMA_REGISTRY_PASSWORD": "x"}, "PASSWORD is set without BOTSTREAM_SCHEMA_REGISTRY_USER"),
    ({"BOTSTREAM_SCHEMA_REGISTRY_USER": "u", "BOTSTREAM_SCHEMA_REGISTRY_BEARER_TOKEN": "t"}, "use one of them"),
    ({"BOTSTREAM_SCHEMA_REGISTRY_KEY_FILE": "/k.pem"}, "KEY_FILE needs BOTSTREAM_SCHEMA_REGISTRY_CERT_FILE"),
])
def test_contradicting_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        registry_config(_settings("http://registry:8081", **env))
    with pytest.raises(ConfigError, match="use one of them"):
        registry_config(_settings("http://a:b@registry:8081", BOTSTREAM_SCHEMA_REGISTRY_USER="u"))


def test_an_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    from botstream.core.codec import registry_client

    settings = _settings("https://registry:8081", BOTSTREAM_SCHEMA_REGISTRY_CA_FILE=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="schema registry settings"):
        registry_client(settings)


def test_wire_format_is_byte_compatible(registry: FakeRegistry) -> None:
    """Magic byte, the 4-byte big-endian id, then exactly the Avro body the single-object framing carries."""
    codec = codec_for(_settings(registry.url), records=["update"])
    record = samples.rich_update()
    data = codec.encode("update", record)
    schema_id = registry.subjects["botstream.updates-value"][0]
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == schema_id
    assert data[5:] == Codec().encode("update", record)[SINGLE_OBJECT_HEADER_SIZE:]
    assert codec.decode("update", data) == record


def test_confluent_kafkas_own_serializers_read_and_write_the_same_bytes(registry: FakeRegistry) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient as Confluent
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    codec = codec_for(_settings(registry.url), records=["update"])
    ours = codec.encode("update", samples.update())
    client = Confluent({"url": registry.url})
    context = SerializationContext("botstream.updates", MessageField.VALUE)
    assert AvroDeserializer(client)(ours, context) == samples.update()
    schema = codec.library.current("update").to_json()
    theirs = AvroSerializer(client, schema)(samples.update(), context)
    assert theirs == ours  # the same id (the registry's, for the same schema) and the same body
    assert codec.decode("update", theirs) == samples.update()
