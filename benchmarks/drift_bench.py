"""Benchmark: lakeforge drift on Spark vs Evidently (pandas), same data, same run.

    python benchmarks/drift_bench.py --rows 10000000          # rows per side, 20 features
    python benchmarks/drift_bench.py --rows 2000000 --sample 1000000 --evidently-full

Reference and current (each `--rows` rows: 16 numeric columns, 4 of them shifted in the current
data, and 4 categorical columns, one with values unseen in the reference) are written once as
Parquet. Timed: lakeforge (Spark: bins from reference quantiles, one counting aggregation per side,
all statistics) on the full data and on a `--sample`-row sample; Evidently's DataDriftPreset on the
same sample in pandas (and on the full data with --evidently-full). Printed: times, ratios, the
drifted columns each tool found, and our values on the sample against numpy/scipy.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lakeforge.config import DriftThresholds, SparkSettings
from lakeforge.drift.binning import ColumnBins, bucket_counts, fit_bins
from lakeforge.drift.compare import DriftMeasure, compare_column
from lakeforge.spark import get_spark

NUMERIC = [f"x{i:02d}" for i in range(16)]
SHIFTED = NUMERIC[:4]
CATEGORICAL = ["c0", "c1", "c2", "c3"]


def make_side(spark: SparkSession, rows: int, current: bool, seed: int) -> DataFrame:
    """Numerics: normal, exponential and uniform columns; the first four move in the current data.

    Random streams are seeded with `seed` + 0..201: give the two sides seeds 1000 apart so no column
    of one side reuses a stream of the other.
    """
    shift = 0.3 if current else 0.0
    numerics = []
    for i, name in enumerate(NUMERIC):
        base = [F.randn(seed + i), -F.log(F.rand(seed + i) + F.lit(1e-12)), F.rand(seed + i) * 10][i % 3]
        numerics.append((base + (shift if name in SHIFTED else 0.0)).alias(name))
    letters = F.array(*[F.lit(c) for c in "abcdefgh"])
    categoricals = [F.element_at(letters, (F.rand(seed + 100 + j) * 8).cast("int") + 1).alias(f"c{j}") for j in range(3)]
    unseen = F.when(F.rand(seed + 200) < (0.2 if current else 0.0), F.lit("new")).otherwise(
        F.element_at(letters, (F.rand(seed + 201) * 4).cast("int") + 1))
    return spark.range(rows).select(*numerics, *categoricals, unseen.alias("c3"))


def lakeforge_drift(
    reference: DataFrame, current: DataFrame
) -> tuple[dict[tuple[str, str], DriftMeasure], list[ColumnBins]]:
    bins = fit_bins(reference, NUMERIC, CATEGORICAL)
    ref_counts, cur_counts = bucket_counts(reference, bins)[None], bucket_counts(current, bins)[None]
    return {(b.name, m.method): m for b in bins
            for m in compare_column(b, ref_counts[b.name], cur_counts[b.name], DriftThresholds(), 1000)}, bins


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    return {m["config"]["column"]: m["value"] for m in snapshot.dict()["metrics"]
            if m["config"]["type"].endswith("ValueDrift")}


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def check_against_scipy(measures, bins, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Largest differences between our values on the sample and numpy/scipy on the same sample."""
    worst = {"psi (same bins)": 0.0, "jensen_shannon (same bins)": 0.0, "ks vs exact ks_2samp": 0.0,
             "wasserstein_normed vs exact": 0.0}
    for b in bins:
        if b.kind != "numeric":
            continue
        edges = np.array(b.coarse_edges)
        p = np.bincount(np.searchsorted(edges, reference[b.name], side="right"), minlength=len(edges) + 2) / len(reference)
        q = np.bincount(np.searchsorted(edges, current[b.name], side="right"), minlength=len(edges) + 2) / len(current)
        pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        diffs = {
            "psi (same bins)": measures[b.name, "psi"].value - np.sum((qf - pf) * np.log(qf / pf)),
            "jensen_shannon (same bins)": measures[b.name, "jensen_shannon"].value - jensenshannon(p, q, base=2),
            "ks vs exact ks_2samp": measures[b.name, "ks"].value - stats.ks_2samp(reference[b.name], current[b.name]).statistic,
            "wasserstein_normed vs exact": measures[b.name, "wasserstein_normed"].value
            - stats.wasserstein_distance(reference[b.name], current[b.name]) / reference[b.name].std(),
        }
        for key, diff in diffs.items():
            worst[key] = max(worst[key], abs(diff))
    return [f"  max |ours - scipy| {key:28s} {value:.2e}" for key, value in worst.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows per side (default: %(default)s)")
    parser.add_argument("--sample", type=int, default=1_000_000, help="rows per side for Evidently (default: %(default)s)")
    parser.add_argument("--evidently-full", action="store_true", help="also run Evidently on the full data")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    spark = get_spark(SparkSettings(master=args.master, conf={"spark.driver.memory": "6g",
                                                               "spark.sql.shuffle.partitions": 4}), str(work / "warehouse"))
    paths = {}
    for side, is_current in (("reference", False), ("current", True)):
        paths[side] = str(work / side)
        make_side(spark, args.rows, is_current, 1000 if is_current else 0).write.parquet(paths[side])
        paths[f"{side}_sample"] = str(work / f"{side}_sample")
        spark.read.parquet(paths[side]).limit(args.sample).coalesce(1).write.parquet(paths[f"{side}_sample"])
    full = {s: spark.read.parquet(paths[s]) for s in ("reference", "current")}
    sample = {s: spark.read.parquet(paths[f"{s}_sample"]) for s in ("reference", "current")}
    pandas_sample = {s: pd.read_parquet(paths[f"{s}_sample"]) for s in ("reference", "current")}

    (ours_full, _), spark_full_s = timed(lakeforge_drift, full["reference"], full["current"])
    (ours_sample, bins_sample), spark_sample_s = timed(lakeforge_drift, sample["reference"], sample["current"])
    evidently_sample, evidently_sample_s = timed(evidently_drift, pandas_sample["reference"], pandas_sample["current"])
    lines = [f"drift benchmark: {args.rows:,} rows per side x {len(NUMERIC) + len(CATEGORICAL)} features "
             f"({len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical), sample {args.sample:,} rows per side, "
             f"Spark {args.master}",
             f"{'run':48s} {'seconds':>9s} {'vs Evidently sample':>20s}",
             f"{'Evidently DataDriftPreset, pandas, sample':48s} {evidently_sample_s:9.1f} {1.0:20.2f}",
             f"{'lakeforge on Spark, sample':48s} {spark_sample_s:9.1f} {spark_sample_s / evidently_sample_s:20.2f}",
             f"{'lakeforge on Spark, full data':48s} {spark_full_s:9.1f} {spark_full_s / evidently_sample_s:20.2f}"]
    if args.evidently_full:
        pandas_full = {s: pd.read_parquet(paths[s]) for s in ("reference", "current")}
        _, evidently_full_s = timed(evidently_drift, pandas_full["reference"], pandas_full["current"])
        lines.append(f"{'Evidently DataDriftPreset, pandas, full data':48s} {evidently_full_s:9.1f} "
                     f"{evidently_full_s / evidently_sample_s:20.2f}")
        lines.append(f"  full data: lakeforge on Spark / Evidently = {spark_full_s / evidently_full_s:.2f}")
    decided = {name: m for (name, _), m in ours_full.items() if m.decisive}
    lines.append("drifted columns, lakeforge (full): "
                 + ", ".join(sorted(n for n, m in decided.items() if m.drifted)))
    lines.append("column   method               lakeforge(full) lakeforge(sample) Evidently(sample)")
    for name in [*NUMERIC[:6], *CATEGORICAL]:
        m = decided[name]
        lines.append(f"{name:8s} {m.method:20s} {m.value:15.4f} {ours_sample[name, m.method].value:17.4f} "
                     f"{evidently_sample[name]:17.4f}")
    lines += check_against_scipy(ours_sample, bins_sample, pandas_sample["reference"], pandas_sample["current"])
    print("\n".join(lines))
    spark.stop()


if __name__ == "__main__":
    main()
