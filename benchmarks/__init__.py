"""Benchmarks: `make bench` runs them all (benchmarks/run_all.py); results land in benchmarks/results/."""
