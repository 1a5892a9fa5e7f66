"""Benchmarks: each module exposes `run(ctx) -> list[Table]`; `make bench` runs them all."""
