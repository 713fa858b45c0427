"""What the deploy tests share: the deploy files parsed, commands checked against the real CLI, and
the metric names the code exports compared with the names PromQL uses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from botstream.core.settings import REPO_ROOT, Settings

DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
K8S_DIR = DEPLOY / "k8s"

# Settings the deploy files already use and botstream/settings.py does not declare yet (asked for in
# the deploy report). Once declared, the check below starts to insist they stay declared.
PENDING_SETTINGS: set[str] = set()


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def settings_env_names() -> set[str]:
    return set(Settings().env_names().values())


def parse_botstream_args(argv: list[str]) -> Any:
    """Parse argv exactly as the image's ENTRYPOINT ["botstream"] would; SystemExit means it is not a
    botstream command (argparse exits on unknown commands and options)."""
    from botstream.ops.cli import build_parser

    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:  # pragma: no cover - the failure path is the assertion message
        raise AssertionError(f"`botstream {' '.join(argv)}` is not a botstream command") from exc


# -- PromQL ------------------------------------------------------------------------------------------
PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "inf", "nan", "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:$])[A-Za-z_:][A-Za-z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression reads: identifiers used bare or before `{` / `[`, after removing
    strings, label matchers, ranges, label lists (by/without/on/ignoring/group_*), Grafana
    variables, and dropping function calls (an identifier followed by `(`) and keywords."""
    s = _STRING.sub('""', expr)
    s = _GRAFANA_VAR.sub(" ", s)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    s = _LABEL_LIST.sub(" ", s)
    names = set()
    for m in _IDENT.finditer(s):
        if s[m.end():].lstrip().startswith("("):
            continue
        if m.group(0).lower() in PROMQL_KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def exported_metric_names() -> dict[str, str]:
    """Every metric name the code exports -> its type, as PromQL would name it.

    Read from prometheus_client's default registry after importing the stages' metrics modules,
    plus the lag collector's declared families (it is registered only in the exporter process).
    Counters are named with `_total` (what the exposition serves); histograms by their base name.
    """
    import importlib

    from prometheus_client import REGISTRY

    from botstream.ops.lag import ConsumerLagCollector
    from botstream.ops.metrics_catalog import STAGE_MODULES

    for module in STAGE_MODULES:  # importing them registers their metrics
        importlib.import_module(module)

    families = list(REGISTRY.collect())
    families += ConsumerLagCollector(Settings(), "unused:9092").describe()
    names: dict[str, str] = {}
    for fam in families:
        if fam.type == "counter":
            names[f"{fam.name}_total"] = "counter"
        else:
            names[fam.name] = fam.type
    return names


def unknown_metric_names(used: Iterable[str], exported: dict[str, str]) -> set[str]:
    """Names in `used` the code does not export; `x_bucket|_sum|_count` counts as histogram `x`."""
    unknown = set()
    for name in used:
        if name in exported:
            continue
        base = next((name.removesuffix(sfx) for sfx in HISTOGRAM_SUFFIXES if name.endswith(sfx)), None)
        if base is not None and exported.get(base) in ("histogram", "summary"):
            continue
        unknown.add(name)
    return unknown


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
