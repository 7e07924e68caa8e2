"""Features step benchmark: the flights example's YAML feature views vs the hand-coded module they
replaced (`benchmarks/legacy_flight_features.py`), on the same generated flights, same run.

Generates N flights (`examples/flights/generate.py`), ingests them, then runs the legacy step and
lakeforge's features step alternately, twice each (best of two), and prints both times, the ratio
and the rows each wrote (they must agree).

    python -m benchmarks.features_bench --rows 10000000
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks import legacy_flight_features
from examples.flights.generate import write_landing
from lakeforge import ingest
from lakeforge.config import load_config
from lakeforge.features import step as features_step
from lakeforge.pipeline import session_for
from lakeforge.tracking import configure_mlflow

CONF = Path(__file__).resolve().parents[1] / "examples" / "flights" / "pipeline.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="generated flights")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, help="storage root; reused (no generation, no ingest) if it has bronze tables")
    parser.add_argument("--out", type=Path, help="JSON report (default: benchmarks/results/features-<time>.json)")
    args = parser.parse_args()
    root = args.work or Path(tempfile.mkdtemp(prefix="lakeforge-features-bench-"))
    config = load_config(CONF, {"storage_root": str(root), "spark.conf": {"spark.sql.shuffle.partitions": 8,
                                                                           "spark.driver.memory": "8g"}})
    spark = session_for(config)
    configure_mlflow(config)
    if not (root / "delta" / "bronze_flights").exists():
        started = time.perf_counter()
        write_landing(spark, config.landing_dir, rows=args.rows, seed=config.seed)
        ingest.run(spark, config)
        print(f"generated and ingested {args.rows:,} flights in {time.perf_counter() - started:.1f}s", flush=True)
    seconds: dict[str, list[float]] = {"legacy": [], "lakeforge": []}
    rows: dict[str, int] = {}
    for round_ in range(args.rounds):
        for name in seconds:
            started = time.perf_counter()
            if name == "legacy":
                rows[name] = legacy_flight_features.run(spark, config)
            else:
                rows[name] = features_step.run(spark, config).rows_out
            seconds[name].append(time.perf_counter() - started)
            print(f"  round {round_ + 1} {name}: {seconds[name][-1]:.1f}s, {rows[name]:,} rows", flush=True)
    if rows["legacy"] != rows["lakeforge"]:
        raise SystemExit(f"the two steps wrote different row counts: {rows}")
    best = {name: min(times) for name, times in seconds.items()}
    ratio = best["lakeforge"] / best["legacy"]
    print(f"\nfeatures step, {args.rows:,} generated flights ({rows['lakeforge']:,} dataset rows), local[*], "
          f"best of {args.rounds}: legacy {best['legacy']:.1f}s, lakeforge {best['lakeforge']:.1f}s, "
          f"lakeforge / legacy = {ratio:.2f}x (target <= 1.1x)")
    out = args.out or Path(__file__).parent / "results" / f"features-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"rows": args.rows, "dataset_rows": rows["lakeforge"], "seconds": seconds,
                               "best": best, "ratio": ratio}, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
