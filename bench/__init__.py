"""Benchmarks: `python -m bench.<area>.<module>`; each prints its figures next to a baseline."""
