"""Make the cluster match the topic catalog, idempotently, through confluent-kafka's AdminClient.

Creates missing topics, brings configs in line (incremental alter), and never changes a partition
count behind the user's back: a topic with fewer partitions than the catalog is reported (growing it
moves keys to other partitions, breaking per-chat order for data already written — `--grow` does it
on request); a topic with more partitions than the catalog cannot be shrunk and is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from botstream.core.kafka import admin_config, client_logger_config
from botstream.core.settings import Settings
from botstream.schemas.topics import Topic, catalog


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: dict[str, dict[str, str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        out = [f"created   {t}" for t in self.created]
        out += [f"updated   {t}: " + ", ".join(f"{k}={v}" for k, v in c.items()) for t, c in self.updated.items()]
        out += [f"grown     {t}" for t in self.grown]
        out += [f"ok        {t}" for t in self.unchanged]
        out += [f"warning   {w}" for w in self.warnings]
        out += [f"error     {e}" for e in self.errors]
        return out


def admin_client(settings: Settings, bootstrap: str | None = None) -> AdminClient:
    return AdminClient(admin_config(settings, bootstrap=bootstrap, timeout_s=10.0, **client_logger_config()))


def apply_topics(admin: AdminClient, topics: list[Topic], *, grow: bool = False, timeout: float = 30.0) -> ApplyReport:
    report = ApplyReport()
    existing = admin.list_topics(timeout=timeout).topics
    missing = [t for t in topics if t.name not in existing]
    raced: set[str] = set()
    if missing:
        futures = admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=t.replication_factor, config=t.configs)
             for t in missing], operation_timeout=timeout, request_timeout=timeout)
        for name, fut in futures.items():
            try:
                fut.result()
                report.created.append(name)
            except KafkaException as exc:
                if exc.args[0].name() == "TOPIC_ALREADY_EXISTS":  # created meanwhile: reconcile it below
                    raced.add(name)
                else:
                    report.errors.append(f"{name}: {exc.args[0].str()}")
    if raced:  # metadata lagged behind a creation: look again
        existing = admin.list_topics(timeout=timeout).topics
    present = [t for t in topics if t.name in existing and t.name not in report.created]
    if present:
        _reconcile(admin, present, existing, report, grow, timeout)
    return report


def _reconcile(admin: AdminClient, topics: list[Topic], existing: Mapping[str, object], report: ApplyReport,
               grow: bool, timeout: float) -> None:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t.name) for t in topics]
    described = admin.describe_configs(resources, request_timeout=timeout)
    by_name = {r.name: fut.result() for r, fut in described.items()}
    to_grow = []
    for t in topics:
        actual = len(existing[t.name].partitions)  # type: ignore[attr-defined]
        if actual > t.partitions:
            report.errors.append(f"{t.name}: has {actual} partitions, catalog says {t.partitions}; "
                                 "Kafka cannot shrink a topic (recreate it or change BOTSTREAM_PARTITIONS)")
        elif actual < t.partitions:
            if grow:
                to_grow.append(NewPartitions(t.name, t.partitions))
            else:
                report.warnings.append(f"{t.name}: has {actual} partitions, catalog says {t.partitions}; "
                                       "co-partitioning with the other chat topics is broken (use --grow)")
        current = by_name[t.name]
        changes = {k: v for k, v in t.configs.items() if k not in current or current[k].value != v}
        if changes:
            res = ConfigResource(ConfigResource.Type.TOPIC, t.name, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in changes.items()])
            try:
                admin.incremental_alter_configs([res], request_timeout=timeout)[res].result()
                report.updated[t.name] = changes
            except KafkaException as exc:
                report.errors.append(f"{t.name}: {exc.args[0].str()}")
        else:
            report.unchanged.append(t.name)
    if to_grow:
        for name, fut in admin.create_partitions(to_grow, request_timeout=timeout).items():
            fut.result()
            report.grown.append(name)


def apply_catalog(settings: Settings, bootstrap: str, *, grow: bool = False) -> ApplyReport:
    return apply_topics(admin_client(settings, bootstrap), catalog(settings), grow=grow)


def list_catalog(settings: Settings, bootstrap: str) -> list[dict[str, object]]:
    """Catalog vs cluster, one row per catalog topic."""
    admin = admin_client(settings, bootstrap)
    existing = admin.list_topics(timeout=15).topics
    rows: list[dict[str, object]] = []
    for t in catalog(settings):
        meta = existing.get(t.name)
        rows.append({"topic": t.name, "catalog_partitions": t.partitions,
                     "cluster_partitions": len(meta.partitions) if meta else None,
                     "cleanup": t.configs["cleanup.policy"], "retention.ms": t.configs.get("retention.ms"),
                     "exists": meta is not None})
    return rows
