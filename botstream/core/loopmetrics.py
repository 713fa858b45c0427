"""Prometheus counters and histograms for the per-record path of one event loop, without a lock.

prometheus-client guards every `inc()` and `observe()` with a mutex (its values may be touched by
any thread); on a worker's per-record path, four or five of those per record cost more than the
rest of the bookkeeping. A worker touches these metrics only from its event loop thread, and the
scrape (Faust's web server) runs on that same loop, so plain integers and floats are enough.
`LoopCounter` and `LoopHistogram` keep them, and register one collector each with the default
registry, which reads them at scrape time (prometheus-client's documented extension point).

Same calling convention as prometheus-client: `COUNTER.labels(a, b).inc()`, `HIST.labels(a).observe(x)`;
children are cached per label values. Not for multi-process use (ingest keeps prometheus-client's).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["LoopCounter", "LoopHistogram"]


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LoopCounter(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self._labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _CounterChild] = {}
        if not self._labelnames:
            self._children[()] = _CounterChild()
        REGISTRY.register(self)

    def labels(self, *values: str) -> _CounterChild:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self._labelnames):
                raise ValueError(f"{self.name}: expected labels {self._labelnames}, got {values}")
            child = self._children[values] = _CounterChild()
        return child

    def inc(self, amount: float = 1.0) -> None:
        self._children[()].value += amount

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self._labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family


class _HistogramChild:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class LoopHistogram(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)) -> None:
        self.name = name
        self.documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(float(b) for b in buckets))
        self._children: dict[tuple[str, ...], _HistogramChild] = {}
        if not self._labelnames:
            self._children[()] = _HistogramChild(self._bounds)
        REGISTRY.register(self)

    def labels(self, *values: str) -> _HistogramChild:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self._labelnames):
                raise ValueError(f"{self.name}: expected labels {self._labelnames}, got {values}")
            child = self._children[values] = _HistogramChild(self._bounds)
        return child

    def observe(self, value: float) -> None:
        self._children[()].observe(value)

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self._labelnames)
        for values, child in list(self._children.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*child.bounds, float("inf")), child.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else _fmt(bound), cumulative))
            family.add_metric(list(values), buckets, child.total)
        yield family


def _fmt(bound: float) -> str:
    return repr(bound) if bound != int(bound) else f"{bound:.1f}"
