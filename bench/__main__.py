"""`make bench` / `python -m bench [--quick] [--only NAME[,NAME]]`: every stage bench, then end to end.

Each stage runs as its own subprocess (`python -m bench.<stage>.bench_<stage>`); its output goes to
`bench/results/raw/<stamp>/<stage>.log` and its JSON (the file it was asked to write, else the last
JSON line it printed) is collected. A stage that fails or times out is reported and the run goes on.
Written: `bench/results/<stamp>.json` (all figures + raw stage JSON), `bench/results/<stamp>.md`
(figure, value, baseline, ratio, target) and, with matplotlib importable, `<stamp>-throughput.png`
and `<stamp>-latency.png` (end-to-end figures against offered load).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass
class Stage:
    name: str
    module: str
    full: list[str]
    quick: list[str]
    json_flag: str | None  # the bench's own "write the JSON here" option
    timeout_s: float
    quick_timeout_s: float


STAGES = [
    Stage("codec", "bench.codec.bench_codec", [], ["--n", "10000", "--repeat", "3"], None, 300, 120),
    Stage("sandbox", "bench.sandbox.bench_sandbox", [], ["--rounds", "1"], "--json", 300, 120),
    Stage("ingest", "bench.ingest.bench_ingest", [], ["--seconds", "2", "--rounds", "1", "--latency-seconds", "4"],
          "--json", 600, 240),
    # streams: + the Quix Streams peer (its virtualenv is made on the first run: ~30 s with the package index)
    Stage("streams", "bench.streams.bench_streams", [], ["--quick"], "--out", 1200, 600),
    Stage("sinks", "bench.sinks.bench_sinks", [], ["--chats", "300", "--speed-replies", "1000",
                                                    "--latency-seconds", "6"], "--json", 600, 240),
    Stage("e2e", "bench.e2e.bench_e2e", [], ["--quick"], "--json", 420, 180),
]


def last_json_line(text: str) -> Any:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_stage(stage: Stage, quick: bool, raw_dir: Path) -> dict[str, Any]:
    log = raw_dir / f"{stage.name}.log"
    json_file = raw_dir / f"{stage.name}.json"
    argv = [sys.executable, "-m", stage.module, *(stage.quick if quick else stage.full)]
    if stage.json_flag:
        argv += [stage.json_flag, str(json_file)]
    timeout = stage.quick_timeout_s if quick else stage.timeout_s
    started = time.monotonic()
    status = "ok"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=out, env=env, start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The stage and what it started (brokers, workers) share its session: stop that group only.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                stdout, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                stdout, _ = proc.communicate()
            status = f"timed out after {timeout:.0f}s"
        out.write(b"\n--- stdout ---\n" + stdout)
    text = stdout.decode(errors="replace")
    data = None
    if json_file.exists():
        try:
            data = json.loads(json_file.read_text())
        except ValueError:
            data = None
    if data is None:
        data = last_json_line(text)
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    if status == "ok" and data is None:
        status = "no JSON output"
    return {"status": status, "seconds": round(time.monotonic() - started, 1), "log": str(log.relative_to(ROOT)),
            "data": data, "argv": argv[1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every bench (a few minutes in all)")
    parser.add_argument("--only", help="comma-separated stages: " + ",".join(s.name for s in STAGES))
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    unknown = (wanted or set()) - {s.name for s in STAGES}
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw_dir = RESULTS / "raw" / stamp
    raw_dir.mkdir(parents=True, exist_ok=True)
    stages: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        if wanted and stage.name not in wanted:
            continue
        print(f"== {stage.name}: python -m {stage.module} {' '.join(stage.quick if args.quick else stage.full)}",
              flush=True)
        stages[stage.name] = run_stage(stage, args.quick, raw_dir)
        st = stages[stage.name]
        print(f"   {st['status']} in {st['seconds']}s (log: {st['log']})", flush=True)
        for f in report.figures(stage.name, st["data"], {k: v["data"] for k, v in stages.items()}):
            ratio = f"  ratio {f.ratio:.3f} vs {f.baseline_name}" if f.ratio is not None else ""
            met = "" if f.met is None else ("  [target met]" if f.met else "  [target MISSED]")
            print(f"   {f.name}: {report.fmt(f.value)} {f.unit}{ratio}"
                  f"{'  target ' + f.target if f.target else ''}{met}", flush=True)
    all_data = {k: v["data"] for k, v in stages.items()}
    figs = [f for name in stages for f in report.figures(name, stages[name]["data"], all_data)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    prefix = RESULTS / stamp
    charts = report.charts(all_data.get("e2e"), prefix)
    summary = {"stamp": stamp, "quick": args.quick, "host": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
               "stages": {k: {kk: vv for kk, vv in v.items() if kk != "data"} for k, v in stages.items()},
               "figures": [f.as_dict() for f in figs], "raw": all_data, "charts": [c.name for c in charts]}
    json_path = prefix.with_suffix(".json")
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    md_path = prefix.with_suffix(".md")
    md_path.write_text(report.markdown(f"botstream bench {stamp}{' (quick)' if args.quick else ''}", stages, figs,
                                       charts))
    print(f"\nwrote {json_path.relative_to(ROOT)}, {md_path.relative_to(ROOT)}"
          + (f", {', '.join(c.name for c in charts)}" if charts else " (no charts: matplotlib not importable)"))
    failed = [k for k, v in stages.items() if v["status"] != "ok"]
    if failed:
        print(f"stages not ok: {', '.join(failed)} (see their logs); the others are reported above")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
