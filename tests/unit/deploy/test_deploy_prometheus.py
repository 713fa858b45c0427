"""Prometheus config and alert rules: promtool validates them and runs the rules' unit tests (each
alert fires on a synthetic series and stays quiet on another), and every metric an alert reads is one
the code exports — a renamed metric would otherwise leave an alert that can never fire."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.unit.deploy.support import (
    PROMETHEUS_DIR,
    exported_metric_names,
    promql_metric_names,
    unknown_metric_names,
)

ALERTS = PROMETHEUS_DIR / "alerts.yml"
REQUIRED_ALERTS = {
    "BotstreamConsumerLagHigh": "botstream_consumer_lag",
    "BotstreamDlqGrowing": "botstream_dlq_records",
    "BotstreamDeliveryLatencyHigh": "botstream_sinks_update_to_delivered_seconds_bucket",
    "BotstreamDeliveryFailureRatioHigh": "botstream_sinks_deliveries_total",
    "BotstreamIngestUnavailable": "botstream_ingest_requests_total",
    "BotstreamCircuitBreakerOpen": "botstream_sinks_breaker_state",
}


def promtool() -> str:
    """promtool's path. Skipped only on a developer machine without it; in CI (env CI set) a missing
    promtool fails, so the rules can never go unchecked there (`make test` installs it)."""
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("promtool is not installed, and CI must check the rules (apt-get install prometheus)")
    pytest.skip("promtool not installed (apt-get install prometheus); CI runs this")


def run_promtool(*args: str) -> str:
    proc = subprocess.run([promtool(), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def rules() -> list[dict[str, object]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_promtool_checks_the_rules() -> None:
    out = run_promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(rules())} rules found" in out


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    out = run_promtool("test", "rules", "alerts.test.yml")
    assert "SUCCESS" in out


def test_promtool_checks_the_scrape_config() -> None:
    out = run_promtool("check", "config", "prometheus.yml")
    assert "is valid prometheus config file syntax" in out


def test_every_alert_is_unit_tested_both_ways() -> None:
    """Each alert appears in alerts.test.yml at least once firing and once silent."""
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts.test.yml").read_text())["tests"]
    fired: set[str] = set()
    silent: set[str] = set()
    for t in tests:
        for case in t["alert_rule_test"]:
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {str(r["alert"]) for r in rules()}
    assert names == fired, f"never shown firing: {names - fired}"
    assert names == silent, f"never shown silent: {names - silent}"


def test_the_required_alerts_exist_on_the_right_metrics() -> None:
    by_name = {str(r["alert"]): str(r["expr"]) for r in rules()}
    for alert, metric in REQUIRED_ALERTS.items():
        assert alert in by_name, f"missing alert {alert}"
        assert metric in promql_metric_names(by_name[alert]), f"{alert} does not read {metric}"
    lag = by_name["BotstreamConsumerLagHigh"]
    assert "> 10000" in lag and [r for r in rules() if r["alert"] == "BotstreamConsumerLagHigh"][0]["for"] == "5m"


def test_alerts_read_only_metrics_the_code_exports() -> None:
    exported = exported_metric_names()
    for rule in rules():
        used = promql_metric_names(str(rule["expr"]))
        assert used, f"{rule['alert']}: no metric found in its expression"
        assert not unknown_metric_names(used, exported), \
            f"{rule['alert']} reads metrics nothing exports: {unknown_metric_names(used, exported)}"


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]  # type: ignore[index]
        assert rule["annotations"]["summary"], rule["alert"]  # type: ignore[index]
