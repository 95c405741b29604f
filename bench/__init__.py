"""Benchmarks against the peers people use today: bench/run, bench/run-satellite."""
