"""The metrics catalog: every metric botstream exports, read from the Prometheus registry.

The metrics table of docs/metrics.md is generated from here (a test keeps it in sync), so the table can't drift
from what the code exports.
"""

from __future__ import annotations

import importlib

from prometheus_client import REGISTRY

STAGE_MODULES = ("botstream.ingest.metrics", "botstream.streams.metrics", "botstream.streams.integrations.metrics", "botstream.sinks.metrics", "botstream.ops.lag")
SKIP_PREFIXES = ("python_", "process_", "platform_")


def catalog() -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) for every botstream metric, sorted by name."""
    for module in STAGE_MODULES:
        importlib.import_module(module)
    rows: dict[str, tuple[str, str, str, str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry has no public iterator
        describe = getattr(collector, "describe", None)
        families = describe() if describe else []
        for family in families:
            if family.name.startswith(SKIP_PREFIXES) or not family.name.startswith("botstream"):
                continue
            labels = _labels(collector)
            name = family.name + ("_total" if family.type == "counter" and not family.name.endswith("_total") else "")
            rows[name] = (name, family.type, labels, family.documentation)
    return [rows[k] for k in sorted(rows)]


def _labels(collector: object) -> str:
    names = getattr(collector, "_labelnames", ())
    return ", ".join(names)


def lag_rows() -> list[tuple[str, str, str, str]]:
    """The lag exporter's families (a custom collector registered only by `botstream lag --serve`)."""
    from botstream.ops.lag import ConsumerLagCollector

    rows = []
    for family in ConsumerLagCollector._families(None):  # type: ignore[arg-type]  # static shapes only
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = ", ".join(getattr(family, "_labelnames", ()) or ())
        rows.append((name, family.type, labels, family.documentation))
    return rows


def markdown_table() -> str:
    out = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    rows = sorted(catalog() + lag_rows())
    out += [f"| `{n}` | {t} | {labels or '—'} | {doc} |" for n, t, labels, doc in rows]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
