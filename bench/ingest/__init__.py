"""Ingest benchmark: `python -m bench.ingest.bench_ingest`."""
