"""The topic catalog: every topic botstream reads or writes, in one place.

Names carry a configurable prefix (`BOTSTREAM_TOPIC_PREFIX`). Every chat-keyed topic has the same
partition count so one chat lives on one partition number end to end and the Faust tables keyed by
chat are co-partitioned with the topics. `botstream topics apply` makes the cluster match this
catalog; the README's topic table is generated from it (a test keeps them in sync).

The catalog reads a handful of settings through `CatalogSettings`, a protocol that
`botstream.core.settings.Settings` satisfies as it is: the wire contract sits below the core and
imports nothing from it.

**One size contract.** Every topic declares the largest record it takes, `TopicSpec.max_message_bytes`,
measured as librdkafka measures a record against its `message.max.bytes` (`record_wire_bytes`: key +
value + serialized headers + the record's own framing). So:

- a producer writing a topic sets `message.max.bytes` to at least that topic's limit
  (`producer_max_message_bytes` gives the value for a set of topics);
- the broker's `max.message.bytes` of the topic (a record *batch*, after compression) is that limit
  plus `batch_allowance` (the batch header and lz4's worst case on incompressible data), so a record
  the producer accepts is never refused by the broker;
- a stage that derives records from another topic's records declares room for what it adds: the
  retry and dead-letter topics take `CHAIN_HEADROOM_BYTES` more than `replies` (attempt, error
  headers and fields), `quarantine` takes the largest record of any topic plus its origin and error;
- ingest refuses (413) a webhook whose records a later stage could not write: an Update larger than
  `updates` or `handoff` (streams copies it there), an `UpdateAccepted` event larger than `messages`
  (it copies the text), or a reply quoting the update's text larger than `replies`
  (`botstream.ingest.sizes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

DAY_MS = 24 * 3600 * 1000
KIB = 1024
# The sizes below are records as librdkafka counts them for `message.max.bytes` (see the module docstring).
# An Update carries the raw webhook (WhatsApp: up to 3 MB) and its normalized fields: room for both.
WEBHOOK_RECORD_BYTES = 4 * 1024 * 1024
# librdkafka's default `message.max.bytes`: what the workers' producers accept unless configured otherwise.
CLIENT_RECORD_BYTES = 1_000_000
# What the sinks add to a reply on its way through the retry chain or to the dead-letter topic.
CHAIN_HEADROOM_BYTES = 64 * KIB
# A quarantined record is the raw bytes of a record of any topic plus its origin, stage and error.
QUARANTINE_RECORD_BYTES = WEBHOOK_RECORD_BYTES + 64 * KIB
# librdkafka's bound on what a record adds to key, value and headers (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD).
RECORD_FRAMING_BYTES = 36
RECORD_BATCH_HEADER_BYTES = 61


class CatalogSettings(Protocol):
    """What the catalog needs to know of a deployment (`Settings` has all of it)."""

    @property
    def topic_prefix(self) -> str: ...
    @property
    def partitions(self) -> int: ...
    @property
    def replication_factor(self) -> int: ...
    @property
    def min_insync_replicas(self) -> int: ...
    @property
    def dedupe_window_s(self) -> int: ...
    @property
    def retry_delays(self) -> tuple[float, ...]: ...

    def topic(self, name: str) -> str: ...


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the catalog declares it (name without the prefix)."""

    suffix: str
    key: str
    value: str
    cleanup: str
    retention_ms: int | None  # None = broker default / forever for compacted topics
    written_by: str
    read_by: str
    doc: str
    chat_keyed: bool = True
    partitions: int | None = None  # None = settings.partitions
    #: the largest record this topic takes (`record_wire_bytes`); explicit for every topic
    max_message_bytes: int = CLIENT_RECORD_BYTES
    changelog: bool = False  # a Faust table's changelog: named "<prefix>-<app>-<table>-changelog"

    def name(self, settings: CatalogSettings) -> str:
        return f"{settings.topic_prefix}-{self.suffix}" if self.changelog else settings.topic(self.suffix)


@dataclass(frozen=True)
class Topic:
    """A catalog entry resolved against settings: what the cluster should hold."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)
    spec: TopicSpec | None = None


def specs(settings: CatalogSettings) -> list[TopicSpec]:
    levels = len(settings.retry_delays)
    out = [
        TopicSpec("updates", "chat key", "Update", "delete", 7 * DAY_MS, "ingest", "streams",
                  "Verified, normalized inbound webhooks; the pipeline's source of truth.",
                  max_message_bytes=WEBHOOK_RECORD_BYTES),
        TopicSpec("messages", "chat key", "ConversationEvent", "delete", 365 * DAY_MS, "streams",
                  "analytics, replay", "Event-sourced conversation log; the conversations table is its fold.",
                  max_message_bytes=CLIENT_RECORD_BYTES),
        TopicSpec("replies", "chat key", "Reply", "delete", 7 * DAY_MS, "streams", "sinks",
                  "Outbound bot actions, in chat order.",
                  max_message_bytes=CLIENT_RECORD_BYTES - CHAIN_HEADROOM_BYTES),
    ]
    for level in range(1, levels + 1):
        out.append(TopicSpec(f"replies.retry.{level}", "chat key", "Reply", "delete", 7 * DAY_MS, "sinks", "sinks",
                             f"Retry level {level}: replies waiting {settings.retry_delays[level - 1]:g}s "
                             "(attempt / not-before / error headers).", max_message_bytes=CLIENT_RECORD_BYTES))
    out += [
        TopicSpec("replies.dlq", "chat key", "Reply", "delete", 30 * DAY_MS, "sinks", "operators (botstream dlq)",
                  "Replies that failed permanently or ran out of attempts, with the reason.",
                  max_message_bytes=CLIENT_RECORD_BYTES),
        TopicSpec("deliveries", "chat key", "DeliveryResult", "delete", 365 * DAY_MS, "sinks", "analytics, streams",
                  "Final outcome of every reply.", max_message_bytes=CLIENT_RECORD_BYTES),
        TopicSpec("handoff", "chat key", "Update", "delete", 30 * DAY_MS, "streams", "human agents",
                  "Updates of chats handed to people; the bot stays silent meanwhile.",
                  max_message_bytes=WEBHOOK_RECORD_BYTES),
        TopicSpec("quarantine", "none", "QuarantineRecord", "delete", 30 * DAY_MS, "any stage", "operators",
                  "Records a stage could not decode: raw bytes and their origin.", chat_keyed=False, partitions=1,
                  max_message_bytes=QUARANTINE_RECORD_BYTES),
    ]
    return out


def spec_of(settings: CatalogSettings, suffix: str) -> TopicSpec:
    """The catalog entry of a topic by its name without the prefix ("updates", "replies.dlq", ...)."""
    for spec in specs(settings):
        if spec.suffix == suffix:
            return spec
    raise KeyError(f"no topic {suffix!r} in the catalog")


def record_wire_bytes(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> int:
    """A record's size as librdkafka checks it against `message.max.bytes` (an upper bound: every
    varint counted at its widest), the measure of `TopicSpec.max_message_bytes`."""
    size = RECORD_FRAMING_BYTES + len(key or b"") + len(value or b"")
    for name, header_value in headers or ():
        size += 10 + len(name.encode()) + len(header_value or b"")
    return size


def batch_allowance(max_record_bytes: int) -> int:
    """What the broker's `max.message.bytes` adds to a topic's record limit: the batch header and
    lz4's worst-case growth of incompressible data (n / 255 + 16, rounded up generously)."""
    return RECORD_BATCH_HEADER_BYTES + max_record_bytes // 255 + 1024


def producer_max_message_bytes(settings: CatalogSettings, suffixes: list[str]) -> int:
    """`message.max.bytes` for a producer writing these topics: the largest of their limits."""
    return max(spec_of(settings, s).max_message_bytes for s in suffixes)


# The workers' RocksDB tables (app, table) -> cleanup. Declared here so `topics apply` creates their
# changelogs up front: a changelog faust has just created can show 0 partitions in the metadata, and
# faust then refuses every write to that table.
SINKS_LEDGER_KEEP_MS = 8 * DAY_MS  # copies of a reply can arrive while the replies topics keep it (7 d)
TABLES: dict[tuple[str, str], tuple[str, str]] = {
    ("streams", "dedupe"): ("compact,delete", "platform update ids seen within the dedupe window"),
    ("streams", "conversations"): ("compact", "chat key -> conversation state (the fold of messages)"),
    ("sinks", "ledger"): ("compact,delete", "reply id -> delivered / dead-lettered (once per reply)"),
    ("sinks", "chats"): ("compact", "chat key -> the reply it waits for in the retry chain"),
    ("sinks", "held"): ("compact", "replies held behind their chat's reply in the retry chain"),
}


def changelog_configs(settings: CatalogSettings, app: str, table: str) -> dict[str, str]:
    """`extra_topic_configs` of a table (the workers pass these, `topics apply` creates them)."""
    cleanup, _ = TABLES[(app, table)]
    configs = {"cleanup.policy": cleanup}
    if (app, table) == ("streams", "dedupe"):
        configs["retention.ms"] = str(settings.dedupe_window_s * 1000 + DAY_MS)  # never resurrect expired keys
    elif (app, table) == ("sinks", "ledger"):
        configs["retention.ms"] = str(SINKS_LEDGER_KEEP_MS + DAY_MS)
    return configs


def changelog_topic(settings: CatalogSettings, app: str, table: str) -> str:
    """The changelog topic of a worker's table, named as Faust names it."""
    if (app, table) not in TABLES:
        raise KeyError(f"no table {table!r} of {app!r} in the catalog")
    return f"{settings.topic_prefix}-{app}-{table}-changelog"


def changelog_specs(settings: CatalogSettings) -> list[TopicSpec]:
    out = []
    for (app, table), (cleanup, doc) in TABLES.items():
        retention = changelog_configs(settings, app, table).get("retention.ms")
        out.append(TopicSpec(f"{app}-{table}-changelog", "table key", "JSON", cleanup,
                             int(retention) if retention else None, app, app, f"Changelog of the {table} table: {doc}.",
                             changelog=True, max_message_bytes=CLIENT_RECORD_BYTES))
    return out


def catalog(settings: CatalogSettings) -> list[Topic]:
    topics = []
    for spec in specs(settings) + changelog_specs(settings):
        configs = {"cleanup.policy": spec.cleanup, "min.insync.replicas": str(settings.min_insync_replicas)}
        if spec.retention_ms is not None:
            configs["retention.ms"] = str(spec.retention_ms)
        configs["max.message.bytes"] = str(spec.max_message_bytes + batch_allowance(spec.max_message_bytes))
        topics.append(Topic(spec.name(settings), spec.partitions or settings.partitions,
                            settings.replication_factor, configs, spec))
    return topics


def retry_topic(settings: CatalogSettings, level: int) -> str:
    return settings.topic(f"replies.retry.{level}")


def markdown_table(settings: CatalogSettings) -> str:
    """The README's topic table (default prefix and partitions)."""
    rows = ["| topic | key | value (schema) | cleanup | retention | written by | read by | meaning |",
            "|---|---|---|---|---|---|---|---|"]
    for spec in specs(settings) + changelog_specs(settings):
        retention = f"{spec.retention_ms // DAY_MS} d" if spec.retention_ms else "forever"
        rows.append(f"| `{spec.name(settings)}` | {spec.key} | `{spec.value}` | {spec.cleanup} | {retention} | "
                    f"{spec.written_by} | {spec.read_by} | {spec.doc} |")
    return "\n".join(rows)
