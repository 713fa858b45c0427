"""Benchmark of the streams stage: `python -m bench.streams.bench_streams [--updates N] [--quick]`."""
