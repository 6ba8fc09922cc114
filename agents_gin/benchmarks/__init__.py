"""Benchmarks behind `python -m launch.benchmark`; each prints ratios to a peer."""
