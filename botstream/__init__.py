"""botstream: Kafka-native stream processing for chat-bot backends.

The one installed package: `botstream.schemas` (the wire contract), `botstream.core` (the shared
core), the stages `botstream.ingest`, `botstream.streams`, `botstream.sinks`, and `botstream.ops`
(the CLI and operations) on top; `botstream.sandbox` stands apart. ARCHITECTURE.md at the root of
the repository says what may import what. This module holds only the version.
"""

__version__ = "0.1.0"
