"""Benchmark scripts (run one with `python benchmarks/<name>.py --rows N`)."""
