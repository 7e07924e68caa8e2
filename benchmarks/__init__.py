"""Benchmark scripts: `python benchmarks/<name>.py --rows N`, and `python -m benchmarks run --scale 1m,10m`."""
