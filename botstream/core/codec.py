"""The codec a process uses, chosen by settings: Avro single-object framing by default, the Confluent
wire format through a schema registry when `SCHEMA_REGISTRY_URL` is set. Decoding reads both."""

from __future__ import annotations

from botstream.core.settings import Settings
from botstream.schemas.codec import Codec

# record name -> the topic whose subject (`<topic>-value`) registers it
RECORD_TOPICS = {"update": "updates", "conversation_event": "messages", "reply": "replies",
                 "delivery_result": "deliveries", "quarantine": "quarantine"}


def codec_for(settings: Settings) -> Codec:
    if not settings.schema_registry_url:
        return Codec()
    from botstream.schemas.registry import SchemaRegistryClient

    topics = {name: settings.topic(suffix) for name, suffix in RECORD_TOPICS.items()}
    codec = Codec(registry=SchemaRegistryClient(settings.schema_registry_url), topics=topics)
    codec.register_schemas()  # blocking HTTP at start-up, never inside the event loop
    return codec
