"""Threshold optimisation benchmark: lakeforge's distributed score histogram vs collecting the scores.

N scored rows (score, label) are written as a Delta table, then the cost-optimal threshold under
a recall constraint is found in two ways, in the same run:

- lakeforge: `evaluation.objectives` - scores bucketed to 1/1000 and counted per (bucket, label)
  in Spark; the sweep runs on the <= 2,002-row histogram on the driver;
- collect: the baseline most notebooks use - `toPandas()` of every (score, label) row, then a
  numpy sweep over the same 1,001 thresholds (sort once, searchsorted per threshold).

Both must choose the same threshold. Prints wall time, rows reaching the driver and the ratio to
the baseline.

    python benchmarks/threshold_bench.py --rows 2000000
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeforge.config import CostMatrix, ObjectiveSettings, SparkSettings
from lakeforge.evaluation.objectives import choose_threshold, score_histogram, threshold_sweep
from lakeforge.spark import get_spark

BUCKETS = 1000
OBJECTIVE = ObjectiveSettings(costs=CostMatrix(false_positive=1.0, false_negative=5.0), min_recall=0.7,
                              score_buckets=BUCKETS)


def generate(spark: SparkSession, path: str, rows: int) -> None:
    """Labels with a 20% base rate; scores informative but noisy, clipped to [0, 1]."""
    labelled = spark.range(rows).withColumn("label", (F.rand(1) < 0.2).cast("int"))
    score = F.least(F.greatest(F.col("label") * 0.25 + F.randn(2) * 0.15 + 0.3, F.lit(0.0)), F.lit(1.0))
    labelled.select(score.alias("score"), "label").write.format("delta").save(path)


def with_histogram(spark: SparkSession, path: str) -> tuple[float, int]:
    histogram = score_histogram(spark.read.format("delta").load(path), BUCKETS)
    choice = choose_threshold(threshold_sweep(histogram, BUCKETS, OBJECTIVE.costs), OBJECTIVE)
    return choice.threshold, len(histogram)


def with_collect(spark: SparkSession, path: str) -> tuple[float, int]:
    frame = spark.read.format("delta").load(path).toPandas()
    scores, labels = frame["score"].to_numpy(), frame["label"].to_numpy()
    order = np.argsort(scores)
    sorted_scores, sorted_labels = scores[order], labels[order]
    positives_at_or_above = np.concatenate([np.cumsum(sorted_labels[::-1])[::-1], [0]])
    thresholds = np.arange(BUCKETS + 1) / BUCKETS
    first = np.searchsorted(sorted_scores, thresholds, side="left")
    tp = positives_at_or_above[first]
    fp = (len(scores) - first) - tp
    fn = labels.sum() - tp
    cost = (OBJECTIVE.costs.false_positive * fp + OBJECTIVE.costs.false_negative * fn) / len(scores)
    feasible = tp / labels.sum() >= OBJECTIVE.min_recall
    best = np.flatnonzero(feasible)[np.lexsort((-thresholds[feasible], cost[feasible]))[0]]
    return float(thresholds[best]), len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="threshold-bench-"))
    spark = get_spark(SparkSettings(master=args.master, conf={"spark.driver.memory": "4g",
                                                              "spark.sql.shuffle.partitions": 4}), str(root / "warehouse"))
    path = str(root / "scored")
    generate(spark, path, args.rows)
    results = {}
    for name, method in [("collect (baseline)", with_collect), ("lakeforge histogram", with_histogram)]:
        method(spark, path)  # warm-up: JIT, file listing, Python workers
        started = time.perf_counter()
        threshold, driver_rows = method(spark, path)
        results[name] = (time.perf_counter() - started, threshold, driver_rows)
    baseline = results["collect (baseline)"][0]
    print(f"rows {args.rows:,}, master {args.master}")
    print(f"{'method':<22}{'seconds':>10}{'threshold':>11}{'driver rows':>13}{'vs baseline':>13}")
    for name, (seconds, threshold, driver_rows) in results.items():
        print(f"{name:<22}{seconds:>10.2f}{threshold:>11.3f}{driver_rows:>13,}{seconds / baseline:>12.2f}x")
    thresholds = {r[1] for r in results.values()}
    print("same threshold:", len(thresholds) == 1)
    spark.stop()


if __name__ == "__main__":
    main()
