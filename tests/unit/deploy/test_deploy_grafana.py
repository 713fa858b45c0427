"""The Grafana dashboard reads only metrics the code exports (a renamed metric would otherwise leave
an empty panel nobody notices), covers what operators asked to see (integrations and partitions too),
is filtered by its template variables (data source, platform, bot), and its provisioning fits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import (
    GRAFANA_DIR,
    exported_metric_names,
    promql_metric_names,
    unknown_metric_names,
)

DASHBOARD = json.loads((GRAFANA_DIR / "dashboards" / "botstream.json").read_text())

# What the dashboard must show -> a metric that shows it.
REQUIRED = {
    "ingest rate": "botstream_ingest_records_produced_total",
    "ACK latency": "botstream_ingest_ack_seconds_bucket",
    "consumer lag": "botstream_consumer_lag",
    "dedupe hits": "botstream_streams_duplicates_dropped_total",
    "handler latency": "botstream_streams_handler_seconds_bucket",
    "handler failures": "botstream_streams_handler_failures_total",
    "deliveries by outcome": "botstream_sinks_deliveries_total",
    "429s": "botstream_sinks_429_total",
    "rate-limit waits": "botstream_sinks_rate_limit_wait_seconds_bucket",
    "retries by level": "botstream_sinks_retry_records_total",
    "DLQ size": "botstream_dlq_records",
    "breaker state": "botstream_sinks_breaker_state",
    "integration calls": "botstream_integration_calls_total",
    "integration latency": "botstream_integration_call_seconds_bucket",
    "integration slots": "botstream_integration_in_flight",
    "integration retries": "botstream_integration_retries_total",
    "integration breakers": "botstream_integration_breaker_state",
    "owned partitions (streams)": "botstream_streams_owned_partitions",
    "owned partitions (sinks)": "botstream_sinks_owned_partitions",
    "checkpoint seconds": "botstream_streams_checkpoint_seconds_bucket",
    "restore seconds": "botstream_streams_restore_seconds_bucket",
}
DATASOURCE = "${datasource}"
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\s*\)$")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from panels(p.get("panels", []))  # collapsed rows nest their panels


QUERY_PANELS = [p for p in panels(DASHBOARD["panels"]) if p.get("type") != "row"]


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (group, topic) (botstream_consumer_lag{group=~"a|b"}) > 10000', {"botstream_consumer_lag"}),
    ("histogram_quantile(0.95, sum by (le, platform) (rate(x_seconds_bucket[$__rate_interval])))", {"x_seconds_bucket"}),
    ("a - a offset 15m > 0", {"a"}),
    ('sum(rate(a_total{outcome="x"}[5m])) / on (bot) group_left (platform) b', {"a_total", "b"}),
    ("max_over_time(c[2m:30s]) >= 2 and bool d", {"c", "d"}),
    ('absent(e) or label_replace(f, "dst", "$1", "src", "(.*)") unless g{le="1e3"}', {"e", "f", "g"}),
    ("sum without (instance) (h) * 1e3", {"h"}),
])
def test_promql_metric_names_finds_the_metrics_and_nothing_else(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_every_panel_has_a_query() -> None:
    assert QUERY_PANELS
    for p in QUERY_PANELS:
        exprs = [t.get("expr", "") for t in p.get("targets", [])]
        assert exprs and all(exprs), f"panel {p['title']!r} has no query"
        assert all(promql_metric_names(e) for e in exprs), f"panel {p['title']!r}: a query reads no metric"


def test_every_metric_in_the_dashboard_is_exported_by_the_code() -> None:
    exported = exported_metric_names()
    for p in QUERY_PANELS:
        for t in p["targets"]:
            unknown = unknown_metric_names(promql_metric_names(t["expr"]), exported)
            assert not unknown, f"panel {p['title']!r} reads metrics nothing exports: {unknown}"
    for var in DASHBOARD.get("templating", {}).get("list", []):
        if var["type"] != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        selector = LABEL_VALUES.match(text)  # label_values(<series selector>, <label>)
        assert selector, f"variable {var['name']}: {text!r} is not label_values(metric, label)"
        assert not unknown_metric_names(promql_metric_names(selector.group(1)), exported), var.get("name")


def test_the_dashboard_shows_what_operators_need() -> None:
    used = {name for p in QUERY_PANELS for t in p["targets"] for name in promql_metric_names(t["expr"])}
    missing = {what: metric for what, metric in REQUIRED.items() if metric not in used}
    assert not missing, f"no panel for {missing}"


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in DASHBOARD["templating"]["list"]}


def test_template_variables_choose_the_datasource_the_platform_and_the_bot() -> None:
    provisioned = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"]}
    found = variables()
    assert list(found)[:3] == ["datasource", "platform", "bot"]
    ds = found["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    assert ds["current"]["value"] in uids  # the default is the provisioned Prometheus
    for name in ("platform", "bot"):
        var = found[name]
        assert var["type"] == "query" and var["datasource"]["uid"] == DATASOURCE
        assert var["includeAll"] and var["multi"] and var["allValue"] == ".*"
    assert '$platform' in found["bot"]["query"]["query"]  # the bot list follows the platform chosen


def test_every_query_is_filtered_by_the_variables_its_metric_has() -> None:
    from botstream.ops.metrics_catalog import catalog

    labels = {name: {x.strip() for x in lab.split(",")} for name, _t, lab, _d in catalog()}
    for p in QUERY_PANELS:
        for t in p["targets"]:
            for name in promql_metric_names(t["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                have = labels.get(name, labels.get(base, set()))
                for label in ("platform", "bot"):
                    if label in have:
                        assert re.search(rf'{re.escape(name)}\{{[^}}]*{label}=~"\${label}"', t["expr"]), (
                            f"panel {p['title']!r}: {name} is not filtered by ${label}")


def test_panels_use_the_datasource_variable_and_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for p in panels(DASHBOARD["panels"]):
        if p.get("type") != "row":
            assert p["datasource"]["uid"] == DATASOURCE, p["title"]
            assert all(t["datasource"]["uid"] == DATASOURCE for t in p["targets"]), p["title"]
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{p['title']!r} is wider than the grid"
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']!r} overlaps another panel"
        cells |= mine
    ids = [p["id"] for p in panels(DASHBOARD["panels"])]
    assert len(ids) == len(set(ids))
    assert DASHBOARD["uid"] == "botstream"


def test_grouping_labels_exist_on_the_metrics_queried() -> None:
    """`sum by (x)` over a metric without label x draws one unlabeled line: a renamed label would go unnoticed."""
    from botstream.ops.metrics_catalog import catalog, lag_rows

    labels = {name: {x.strip() for x in lab.split(",") if x.strip()} for name, _t, lab, _d in catalog() + lag_rows()}
    for p in QUERY_PANELS:
        for t in p["targets"]:
            have = {"le", "instance", "job"}
            for name in promql_metric_names(t["expr"]):
                have |= labels.get(name, labels.get(re.sub(r"_(bucket|sum|count)$", "", name), set()))
            for group in re.findall(r"\bby\s*\(([^)]*)\)", t["expr"]):
                used = {x.strip() for x in group.split(",") if x.strip()}
                assert used <= have, f"panel {p['title']!r} groups by {used - have}, which its metrics lack"
