"""Record contracts (Avro schemas in *.avsc) and the codec that frames them on Kafka.

Import what you need from its module — ``botstream.schemas.codec.Codec``, ``botstream.schemas.records``,
``botstream.schemas.errors`` — this package deliberately imports nothing at start-up so that light users
(e.g. the topic catalog) do not pay for fastavro and httpx.
"""
