"""botstream: Kafka-native stream processing for chat-bot backends.

The spine package: settings, the bots registry, the CLI, the embedded Kafka launcher, the topic
catalog's admin side, metrics and logging setup. The stages live in `ingest`, `streams`, `sinks`.
"""

__version__ = "0.1.0"
