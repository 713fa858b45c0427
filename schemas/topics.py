"""The topic catalog: every topic botstream reads or writes, in one place.

Names carry a configurable prefix (`BOTSTREAM_TOPIC_PREFIX`). Every chat-keyed topic has the same
partition count so one chat lives on one partition number end to end and the Faust tables keyed by
chat are co-partitioned with the topics. `botstream topics apply` makes the cluster match this
catalog; the README's topic table is generated from it (a test keeps them in sync).

The catalog reads a handful of settings through `CatalogSettings`, a protocol that
`botstream.core.settings.Settings` satisfies as it is: the wire contract sits below the core and
imports nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

DAY_MS = 24 * 3600 * 1000
# A WhatsApp webhook may be 3 MB and each Update carries the raw body: leave room for the envelope.
WEBHOOK_RECORD_BYTES = 4 * 1024 * 1024


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
    max_message_bytes: int | None = None  # None = broker default (~1 MiB)
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
                  "analytics, replay", "Event-sourced conversation log; the conversations table is its fold."),
        TopicSpec("replies", "chat key", "Reply", "delete", 7 * DAY_MS, "streams", "sinks",
                  "Outbound bot actions, in chat order."),
    ]
    for level in range(1, levels + 1):
        out.append(TopicSpec(f"replies.retry.{level}", "chat key", "Reply", "delete", 7 * DAY_MS, "sinks", "sinks",
                             f"Retry level {level}: replies waiting {settings.retry_delays[level - 1]:g}s "
                             "(attempt / not-before / error headers)."))
    out += [
        TopicSpec("replies.dlq", "chat key", "Reply", "delete", 30 * DAY_MS, "sinks", "operators (botstream dlq)",
                  "Replies that failed permanently or ran out of attempts, with the reason."),
        TopicSpec("deliveries", "chat key", "DeliveryResult", "delete", 365 * DAY_MS, "sinks", "analytics, streams",
                  "Final outcome of every reply."),
        TopicSpec("handoff", "chat key", "Update", "delete", 30 * DAY_MS, "streams", "human agents",
                  "Updates of chats handed to people; the bot stays silent meanwhile.",
                  max_message_bytes=WEBHOOK_RECORD_BYTES),
        TopicSpec("quarantine", "none", "QuarantineRecord", "delete", 30 * DAY_MS, "any stage", "operators",
                  "Records a stage could not decode: raw bytes and their origin.", chat_keyed=False, partitions=1,
                  max_message_bytes=WEBHOOK_RECORD_BYTES),
    ]
    return out


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
                             changelog=True))
    return out


def catalog(settings: CatalogSettings) -> list[Topic]:
    topics = []
    for spec in specs(settings) + changelog_specs(settings):
        configs = {"cleanup.policy": spec.cleanup, "min.insync.replicas": str(settings.min_insync_replicas)}
        if spec.retention_ms is not None:
            configs["retention.ms"] = str(spec.retention_ms)
        if spec.max_message_bytes is not None:
            configs["max.message.bytes"] = str(spec.max_message_bytes)
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
