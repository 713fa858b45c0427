"""Turn the stage benches' JSON into one table of figures: value, the baseline measured in the same
run, their ratio, and the target. Each stage bench has its own JSON shape; `FIGURES` knows where
its headline numbers are. Unknown or partial JSON yields fewer rows, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    stage: str
    name: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    ratio: float | None = None
    met: bool | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = round(self.value / self.baseline, 3)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get(d: Any, *path: Any) -> Any:
    for p in path:
        if isinstance(d, dict):
            d = d.get(p)
        elif isinstance(d, list) and isinstance(p, int) and -len(d) <= p < len(d):
            d = d[p]
        else:
            return None
    return d


def codec(j: dict[str, Any]) -> list[Figure]:
    ratio = j.get("ratio_vs_json")
    return [Figure("codec", "Update encode+decode", j.get("codec_records_per_s"), "records/s",
                   j.get("json_records_per_s"), "json round trip", ">= 1.0x json",
                   met=None if ratio is None else ratio >= 1.0)]


def sandbox(j: dict[str, Any]) -> list[Figure]:
    res = j.get("results") or []
    bare = next((x for x in res if "bare" in x.get("target", "")), None)
    out = []
    for x in res:
        if x is bare:
            continue
        out.append(Figure("sandbox", f"{x.get('target')} (per server CPU-s)", x.get("req_per_cpu_s"), "req/CPU-s",
                          bare.get("req_per_cpu_s") if bare else None, "bare ASGI app", ""))
    return out


def ingest(j: dict[str, Any]) -> list[Figure]:
    rps, cpu, t = j.get("rps") or {}, j.get("req_per_cpu_s") or {}, j.get("targets") or {}
    out = [
        Figure("ingest", "saturation", rps.get("ingest"), "req/s", rps.get("bare"), "bare HTTP ceiling",
               ">= 0.5x bare", met=t.get("saturation_ge_50pct_of_bare")),
        Figure("ingest", "saturation per CPU-s", cpu.get("ingest"), "req/CPU-s", cpu.get("bare"), "bare HTTP per CPU-s"),
        Figure("ingest", "vs naive awaited flush", rps.get("ingest"), "req/s", rps.get("naive_awaited_flush"),
               "naive handler", ">= 10x", met=t.get("ge_10x_naive")),
        Figure("ingest", "vs raw Kafka ceiling", rps.get("ingest"), "req/s", rps.get("kafka_ceiling"), "raw producer"),
    ]
    for rate, lat in (j.get("ack_latency_ms") or {}).items():
        out.append(Figure("ingest", f"ACK p99 at {rate}/s (client)", lat.get("p99"), "ms", lat.get("p50"), "p50",
                          "<= 20 ms" if rate == "1000" else "",
                          met=(lat.get("p99") or 1e9) <= 20 if rate == "1000" else None))
    return out


def sinks(j: Any) -> list[Figure]:
    items = j if isinstance(j, list) else [j]
    out = []
    for x in items:
        if "budget_share" in x:
            out.append(Figure("sinks", "budget used (Telegram 30/s)", x.get("msg_per_s"), "msg/s", 30.0,
                              "platform budget", "close to 1.0x, 0 429s", met=x.get("429s") == 0))
        if "sink_deliveries_per_s" in x:
            out.append(Figure("sinks", "speed, limits off", x.get("sink_deliveries_per_s"), "deliveries/s",
                              x.get("bare_httpx_requests_per_s"), "bare httpx loop"))
            out.append(Figure("sinks", "speed per CPU-s", x.get("sink_per_cpu_s"), "deliveries/CPU-s",
                              x.get("bare_per_cpu_s"), "bare httpx loop per CPU-s"))
        if "p99_ms" in x:  # bench_sinks pops "scenario" before writing --json, so match on keys
            out.append(Figure("sinks", "replies→accepted p99 at half budget", x.get("p99_ms"), "ms",
                              x.get("p50_ms"), "p50"))
    return out


def streams(j: dict[str, Any]) -> list[Figure]:
    """Issue 14's targets: worker / Quix Streams (same run), update → reply p99 at 50 % of capacity,
    recovery of 1M dedupe keys, worker CPU per update; the Faust pass-through, RSS as context."""
    t = j.get("targets") or {}
    w, pt, qx, rec = j.get("worker") or {}, j.get("passthrough") or {}, j.get("quix") or {}, j.get("recovery") or {}
    return [
        Figure("streams", "worker throughput vs Quix Streams", w.get("updates_per_s"), "updates/s",
               qx.get("updates_per_s"), "Quix Streams, same workload and run", ">= 0.5x",
               met=t.get("worker_vs_quix_ge_0.5")),
        Figure("streams", "worker per CPU-s vs Quix Streams", w.get("updates_per_cpu_s"), "updates/CPU-s",
               qx.get("updates_per_cpu_s"), "Quix Streams per CPU-s"),
        Figure("streams", "updates→replies p99 at 50 % capacity", _get(w, "latency", "p99_ms"), "ms", 50.0,
               "target", "<= 50 ms", met=t.get("latency_p99_le_50ms")),
        Figure("streams", "recovery s per 1M dedupe keys", rec.get("recovery_s_per_1m_keys"), "s", 15.0,
               "target", "<= 15 s", met=t.get("recovery_1m_keys_le_15s")),
        Figure("streams", "worker CPU per update", w.get("cpu_us_per_update"), "µs", 200.0, "target", "<= 200 µs",
               met=t.get("cpu_per_update_le_200us")),
        Figure("streams", "worker throughput vs Faust pass-through", w.get("updates_per_s"), "updates/s",
               pt.get("updates_per_s"), "Faust pass-through"),
        Figure("streams", "worker RSS peak", j.get("worker_rss_peak_mib"), "MiB",
               _get(j, "rss_peaks_mib", "quix"), "Quix Streams RSS"),
    ]


def e2e(j: dict[str, Any], stages: dict[str, Any] | None = None) -> list[Figure]:
    ingest_sat = _get(stages or {}, "ingest", "rps", "ingest")
    out = [
        Figure("e2e", "saturation, acknowledged", j.get("saturation_acked_per_s"), "updates/s", ingest_sat,
               "ingest alone (same run)" if ingest_sat else "", ">= 2,000/s"),
        Figure("e2e", "best delivered rate", j.get("best_delivered_per_s"), "updates/s", 2000.0, "target",
               ">= 2,000/s", met=j.get("meets_rate_target")),
        Figure("e2e", "highest offered rate kept up with, p99 <= 250 ms", j.get("highest_load_within_p99"),
               "updates/s", 1000.0, "target", ">= 1,000/s", met=j.get("meets_p99_target")),
        Figure("e2e", "CPU per update at 500/s, all processes incl. Kafka", j.get("cpu_ms_per_update_at_target_rate"),
               "ms", 2.0, "target", "<= 2 ms", met=j.get("meets_cpu_target")),
        Figure("e2e", "worst update→delivered p99 below saturation", j.get("worst_e2e_p99_below_saturation_ms"),
               "ms", None, ""),
        Figure("e2e", "overtakes + sandbox order violations", (j.get("overtakes_total") or 0) + (j.get("order_violations") or 0), "", None, "", "0", met=((j.get("overtakes_total") or 0) + (j.get("order_violations") or 0)) == 0),
    ]
    idle = j.get("idle_cpu_cores_total")
    for s in j.get("steps") or []:
        label = s.get("step")
        if s.get("offered_per_s") and idle is not None and s.get("cpu_s_per_1k_total") is not None:
            busy = s["cpu_s_per_1k_total"] * s["offered_per_s"] / 1000  # CPU incl. the drain, per second offered
            out.append(Figure("e2e", f"{label}: cores needed (CPU per update x offered rate)", round(busy, 3), "cores", idle, "idle cores, no load (same run)"))
        out.append(Figure("e2e", f"{label}: update→delivered p99", s.get("e2e_p99_ms"), "ms", s.get("ack_p99_ms"),
                          "ACK p99 (same step)"))
        out.append(Figure("e2e", f"{label}: CPU-s per 1k updates", s.get("cpu_s_per_1k_total"), "CPU-s",
                          _get(s, "cpu_s_per_1k", "ingest"), "ingest's share"))
    return out


FIGURES: dict[str, Callable[..., list[Figure]]] = {
    "codec": codec, "sandbox": sandbox, "ingest": ingest, "sinks": sinks, "streams": streams, "e2e": e2e,
}


def figures(stage: str, data: Any, all_data: dict[str, Any]) -> list[Figure]:
    fn = FIGURES.get(stage)
    if fn is None or data is None:
        return []
    try:
        return fn(data, all_data) if stage == "e2e" else fn(data)
    except Exception as exc:  # noqa: BLE001 - a changed JSON shape must not lose the other stages
        return [Figure(stage, f"(could not read figures: {exc!r})", None)]


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(title: str, stages: dict[str, dict[str, Any]], figs: list[Figure], charts: list[Path]) -> str:
    lines = [f"# {title}", "", "| stage | status | seconds |", "|---|---|---|"]
    for name, st in stages.items():
        lines.append(f"| {name} | {st.get('status')} | {fmt(st.get('seconds'))} |")
    lines += ["", "| stage | figure | value | unit | baseline | baseline is | ratio | target | met |",
              "|---|---|---|---|---|---|---|---|---|"]
    for f in figs:
        lines.append(f"| {f.stage} | {f.name} | {fmt(f.value)} | {f.unit} | {fmt(f.baseline)} | {f.baseline_name} | "
                     f"{fmt(f.ratio)} | {f.target} | {fmt(f.met)} |")
    if charts:
        lines += [""] + [f"![{c.stem}]({c.name})" for c in charts]
    return "\n".join(lines) + "\n"


def charts(e2e_data: dict[str, Any] | None, out_prefix: Path) -> list[Path]:
    """Throughput and latency against offered load (PNG), when matplotlib is importable."""
    if not e2e_data or not e2e_data.get("steps"):
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    steps = [s for s in e2e_data["steps"] if s.get("offered_per_s")]
    sat = next((s for s in e2e_data["steps"] if not s.get("offered_per_s")), None)
    x = [s["offered_per_s"] for s in steps]
    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [s["acked_per_s"] for s in steps], "o-", label="acknowledged/s")
    ax.plot(x, [s.get("delivered_per_s") or 0 for s in steps], "s-", label="delivered/s")
    ax.plot(x, x, ":", color="grey", label="offered")
    if sat:
        ax.axhline(sat["acked_per_s"], color="red", ls="--", label="saturation (acked)")
    made.append(_save(plt, fig, ax, "updates/s", "throughput", out_prefix))
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("ack_p50_ms", "ACK p50"), ("ack_p99_ms", "ACK p99"), ("e2e_p50_ms", "update→delivered p50"),
                       ("e2e_p99_ms", "update→delivered p99")):
        ax.plot(x, [s.get(key) or 0 for s in steps], "o-", label=label)
    ax.axhline(100, color="red", ls="--", label="p99 target")
    ax.set_yscale("log")
    made.append(_save(plt, fig, ax, "ms", "latency", out_prefix))
    return made


def _save(plt: Any, fig: Any, ax: Any, ylabel: str, what: str, out_prefix: Path) -> Path:
    """Label, title and write one chart as `<prefix>-<what>.png`."""
    ax.set_xlabel("offered updates/s")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.set_title(f"botstream end to end: {what}")
    path = out_prefix.with_name(f"{out_prefix.name}-{what}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
