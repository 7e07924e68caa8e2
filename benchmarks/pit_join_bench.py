"""Point-in-time join benchmark: lakeforge's bucketed as-of join vs two common baselines, same run.

A spine of N rows (id, key, time) and two feature tables of N/10 rows each (key, time, value), all
stored as Delta, are joined "as of" the spine time within a TTL in three ways:

- lakeforge: `features.retrieval.point_in_time_join` (both tables and the spine stacked, one shuffle
  by key + time bucket, a running max per table);
- window: union spine and feature rows, `last(..., ignorenulls)` over a window partitioned by key
  and ordered by time, then the TTL check;
- naive: range join (same key, feature time in [spine time - TTL, spine time]) + row_number.

Each result is reduced to counts (rows out, matched rows per table), so the whole join runs and
only one row reaches the driver. Prints wall time, matched rows (must agree) and ratios against the naive baseline, plus the peak
executor memory read from Spark's status REST API.

    python benchmarks/pit_join_bench.py --rows 2000000
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakeforge.config import SparkSettings
from lakeforge.features.retrieval import point_in_time_join
from lakeforge.features.views import ViewTable
from lakeforge.spark import get_spark

TTL_HOURS = 24 * 7
SPAN_SECONDS = 90 * 24 * 3600
START = 1_356_998_400  # 2013-01-01 UTC
TABLES = ("ft_a", "ft_b")


# The Spark settings of every side (benchmarks/peers.py gives Feast's session the same).
SPARK_CONF = {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": 16, "spark.sql.adaptive.enabled": True}


def generate(spark: SparkSession, root: Path, rows: int, keys: int, file_format: str = "delta") -> None:
    """Write the spine and the two feature tables under `root` (deterministic), as Delta or Parquet."""
    def timed(seed: int) -> F.Column:
        return F.timestamp_seconds(F.lit(START) + (F.rand(seed) * SPAN_SECONDS).cast("long"))

    spine = spark.range(rows).select(F.col("id"), (F.xxhash64("id") % keys).alias("key"), timed(1).alias("t"))
    spine.write.format(file_format).mode("overwrite").save(str(root / "spine"))
    for seed, name in enumerate(TABLES, start=2):
        table = spark.range(rows // 10).select(
            (F.xxhash64("id", F.lit(seed)) % keys).alias("key"), timed(seed).alias("event_time"),
            F.rand(seed + 10).alias(f"{name}_value"))
        table.write.format(file_format).mode("overwrite").save(str(root / name))


def read_tables(spark: SparkSession, root: Path, file_format: str = "delta") -> tuple[DataFrame, dict[str, DataFrame]]:
    """The spine and the feature tables `generate` wrote."""
    read = lambda name: spark.read.format(file_format).load(str(root / name))
    return read("spine"), {name: read(name) for name in TABLES}


def declaration(name: str) -> ViewTable:
    return ViewTable(name, ("key",), TTL_HOURS * 3600, False, (f"{name}_value",))


def lakeforge_join(spine: DataFrame, tables: dict[str, DataFrame]) -> DataFrame:
    joined = point_in_time_join(spine, {n: (declaration(n), rows) for n, rows in tables.items()}, spine_time="t")
    return joined.select("id", *[f"{n}_value" for n in tables])


def window_join(spine: DataFrame, tables: dict[str, DataFrame]) -> DataFrame:
    joined = spine
    for name, rows in tables.items():
        value = f"{name}_value"
        features = rows.select("key", F.col("event_time").alias("t"), F.lit(None).cast("long").alias("id"),
                               F.struct(F.col("event_time").alias("at"), F.col(value).alias("v")).alias("_f"))
        stacked = joined.withColumn("_f", F.lit(None).cast(features.schema["_f"].dataType)).unionByName(
            features, allowMissingColumns=True)
        # Feature rows sort before spine rows at the same time (id null first), so they count.
        window = (Window.partitionBy("key").orderBy("t", F.col("id").asc_nulls_first(), "_f")
                  .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        latest = F.last("_f", ignorenulls=True).over(window)
        fresh = F.unix_timestamp("t") - F.unix_timestamp(F.col("_latest.at")) <= TTL_HOURS * 3600
        joined = (stacked.withColumn("_latest", latest).where(F.col("id").isNotNull())
                  .withColumn(value, F.when(fresh, F.col("_latest.v"))).drop("_f", "_latest"))
    return joined.select("id", *[f"{n}_value" for n in tables])


def naive_join(spine: DataFrame, tables: dict[str, DataFrame]) -> DataFrame:
    joined = spine
    for name, rows in tables.items():
        candidates = rows.select(F.col("key").alias("_key"), "event_time", f"{name}_value")
        in_range = ((F.col("key") == F.col("_key")) & (F.col("event_time") <= F.col("t"))
                    & (F.col("event_time") >= F.col("t") - F.expr(f"INTERVAL {TTL_HOURS} HOURS")))
        newest_first = Window.partitionBy("id").orderBy(F.col("event_time").desc_nulls_last(), F.col(f"{name}_value").desc())
        joined = (joined.join(candidates, in_range, "left").withColumn("_rank", F.row_number().over(newest_first))
                  .where("_rank = 1").drop("_key", "event_time", "_rank"))
    return joined.select("id", *[f"{n}_value" for n in tables])


def peak_executor_memory(spark: SparkSession) -> str:
    """Peak JVM heap of the executors from the status REST API, or why it is not readable."""
    if not spark.sparkContext.uiWebUrl:
        return "n/a (Spark UI disabled)"
    url = f"http://localhost:{spark.sparkContext.uiWebUrl.rsplit(':', 1)[1]}"
    app = spark.sparkContext.applicationId
    try:
        with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/executors", timeout=60) as response:
            executors = json.load(response)
    except OSError as exc:
        return f"n/a ({exc})"
    peaks = [e.get("peakMemoryMetrics", {}).get("JVMHeapMemory", 0) for e in executors]
    return f"{max(peaks) / 2**20:.0f} MiB" if peaks and max(peaks) else "n/a (not reported)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="spine rows (feature tables: rows/10 each)")
    parser.add_argument("--keys", type=int, default=0, help="distinct entity keys (default: rows/100)")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive range join")
    args = parser.parse_args()
    keys = args.keys or max(args.rows // 100, 1)
    root = Path(tempfile.mkdtemp(prefix="pit_bench_"))
    spark = get_spark(SparkSettings(app_name="pit-join-bench", master="local[2]",
                                    conf={"spark.ui.enabled": True, **SPARK_CONF}), str(root / "warehouse"))
    generate(spark, root, args.rows, keys)
    spine, tables = read_tables(spark, root)
    approaches = {"lakeforge": lakeforge_join, "window": window_join, "naive": naive_join}
    if args.skip_naive:
        approaches.pop("naive")
    warm_up = spine.where(F.col("id") < 10_000)
    for join in approaches.values():  # JIT and code generation warm-up, not timed
        join(warm_up, tables).agg(*[F.count(f"{n}_value") for n in TABLES]).head()
    results = {}
    for name, join in approaches.items():
        started = time.perf_counter()
        counts = join(spine, tables).agg(F.count(F.lit(1)), *[F.count(f"{n}_value") for n in TABLES]).head()
        seconds = time.perf_counter() - started
        if counts[0] != args.rows:
            raise SystemExit(f"{name}: {counts[0]} rows out, expected {args.rows}")
        results[name] = (seconds, tuple(counts[1:]))
        print(f"  {name}: {seconds:.1f}s", flush=True)
    baseline = results["naive"][0] if "naive" in results else results["window"][0]
    print(f"\nspine {args.rows:,} rows, {keys:,} keys, 2 feature tables x {args.rows // 10:,} rows, TTL {TTL_HOURS}h, "
          f"local[2]")
    print(f"{'approach':<10} {'seconds':>8} {'matched (a, b)':>22} {'speed-up vs ' + ('naive' if 'naive' in results else 'window'):>18}")
    for name, (seconds, matched) in results.items():
        print(f"{name:<10} {seconds:>8.1f} {str(matched):>22} {baseline / seconds:>17.2f}x")
    print(f"peak executor JVM heap (whole run): {peak_executor_memory(spark)}")
    spark.stop()


if __name__ == "__main__":
    main()
