"""Time to first rows: ``lakeforge query`` (delta-rs + DuckDB, no JVM) vs the same read through a new
SparkSession with Delta, each in a fresh process (interpreter start included), best of `--rounds`.

    python -m benchmarks.query_bench --conf examples/flights/pipeline.yaml [--table predictions]

Run it on a lakehouse a pipeline wrote (``./run demo``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPARK_READ = """
import sys
from lakeforge.config import load_config
from lakeforge.pipeline import session_for
config = load_config(sys.argv[1])
session_for(config).read.format("delta").load(config.table_path(sys.argv[2])).limit(5).show()
"""


def seconds_of(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=str(REPO / "examples" / "flights" / "pipeline.yaml"))
    parser.add_argument("--table", default="predictions")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    query = [sys.executable, "-m", "lakeforge.cli", "query", f"SELECT * FROM {args.table} LIMIT 5", "--conf", args.conf]
    spark = [sys.executable, "-c", SPARK_READ, args.conf, args.table]
    best = {name: min(seconds_of(command) for _ in range(args.rounds))
            for name, command in (("lakeforge query", query), ("SparkSession read", spark))}
    print(f"first 5 rows of {args.table}, best of {args.rounds}: lakeforge query {best['lakeforge query']:.2f}s, "
          f"SparkSession read {best['SparkSession read']:.2f}s "
          f"({best['SparkSession read'] / best['lakeforge query']:.1f}x; target: query under 2 s)")


if __name__ == "__main__":
    main()
