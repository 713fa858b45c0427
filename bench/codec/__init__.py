"""Codec benchmark: `python -m bench.codec.bench_codec`."""
