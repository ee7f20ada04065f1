"""Benchmarks: `python -m bench` (see BENCHMARKS.md)."""
