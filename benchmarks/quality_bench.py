"""Quality rules benchmark: lakeforge's one-scan runner vs one Spark query per rule, same run.

A synthetic table of N rows built with ``spark.range`` (cached before timing) is checked against 20
rules: row rules (not_null, range, allowed_values, regex) and table rules of the same scan
(completeness, freshness, row_count), declared as in the pipeline YAML.

- one-scan: ``lakeforge.quality.runner.measure_table`` with all 20 rules (one aggregation job);
- naive: the same function called once per rule (20 queries);
- great_expectations (optional, ``--gx-python``): the equivalent expectation suite validated by
  Great Expectations on Spark, run in that interpreter (a separate venv) on the same data.

Both lakeforge ways must report identical metrics. Prints seconds, rows/s and ratios to naive.

    python benchmarks/quality_bench.py --rows 10000000 --gx-python /tmp/gx/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

START = datetime(2024, 1, 1)
RUN_TIME = START + timedelta(days=400)
CODES = ["A", "B", "C", "D", "E"]
CHANNELS = ["web", "store", "phone"]
RULES = [
    {"rule": "not_null", "column": "id"},
    {"rule": "not_null", "column": "store"},
    {"rule": "not_null", "column": "code"},
    {"rule": "not_null", "column": "ts"},
    {"rule": "not_null", "column": "sku"},
    {"rule": "range", "column": "amount", "min": 0, "max": 1000},
    {"rule": "range", "column": "qty", "min": 0, "max": 100},
    {"rule": "range", "column": "store", "min": 0, "max": 999},
    {"rule": "range", "column": "price", "min": 0.5, "max": 50},
    {"rule": "range", "column": "id", "min": 0},
    {"rule": "allowed_values", "column": "code", "values": CODES},
    {"rule": "allowed_values", "column": "channel", "values": CHANNELS},
    {"rule": "regex", "column": "sku", "pattern": "^SKU-[0-9]{7}$"},
    {"rule": "regex", "column": "code", "pattern": "^[A-Z]$"},
    {"rule": "completeness", "column": "amount", "min_ratio": 0.95},
    {"rule": "completeness", "column": "code", "min_ratio": 0.99},
    {"rule": "completeness", "column": "qty", "min_ratio": 0.99},
    {"rule": "completeness", "column": "channel", "min_ratio": 0.99},
    {"rule": "freshness", "column": "ts", "max_age_hours": 24 * 400},
    {"rule": "row_count", "min_ratio": 0.5, "max_ratio": 2.0},
]


def session(cores: int) -> SparkSession:
    return (
        SparkSession.builder.master(f"local[{cores}]").appName("quality-bench")
        .config("spark.driver.memory", "6g").config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC").getOrCreate()
    )


def synthetic(spark: SparkSession, rows: int) -> DataFrame:
    """Deterministic table with a few nulls and out-of-range values, cached and materialized."""
    seq = F.col("id")
    df = spark.range(rows).select(
        seq.alias("id"),
        (seq % 1000).cast("int").alias("store"),
        F.when(seq % 53 == 0, None).otherwise(F.rand(7) * 1000).alias("amount"),
        F.when(seq % 10_007 == 0, 101).otherwise(seq % 100).cast("int").alias("qty"),
        (F.rand(11) * 49.5 + 0.5).alias("price"),
        F.when(seq % 1_009 == 0, "ZZ").otherwise(F.element_at(F.array(*map(F.lit, CODES)), (seq % 5 + 1).cast("int"))).alias("code"),
        F.element_at(F.array(*map(F.lit, CHANNELS)), (seq % 3 + 1).cast("int")).alias("channel"),
        F.format_string("SKU-%07d", seq % 10_000_000).alias("sku"),
        F.timestamp_seconds(F.lit(int(START.timestamp())) + seq % (300 * 86400)).alias("ts"),
    ).cache()
    df.count()
    return df


def lakeforge(df: DataFrame, rows: int) -> dict[str, float]:
    from pydantic import TypeAdapter

    from lakeforge.quality.rules import QualityRule, RuleContext
    from lakeforge.quality.runner import measure_table

    rules = [TypeAdapter(QualityRule).validate_python(spec) for spec in RULES]
    ctx = RuleContext("synthetic", RUN_TIME, 0, 0, previous_rows=rows)
    started = time.perf_counter()
    one_scan = measure_table(df, rules, ctx)
    one_scan_seconds = time.perf_counter() - started
    started = time.perf_counter()
    naive = [result for rule in rules for result in measure_table(df, [rule], ctx)]
    naive_seconds = time.perf_counter() - started
    if one_scan != naive:
        raise SystemExit(f"one-scan and naive metrics differ:\n{one_scan}\n{naive}")
    statuses = {s: sum(r.status == s for r in one_scan) for s in ("pass", "fail")}
    print(f"lakeforge metrics: {len(one_scan)} ({statuses['pass']} pass, {statuses['fail']} fail), identical both ways")
    return {"lakeforge one-scan": one_scan_seconds, "naive (1 query/rule)": naive_seconds}


def expectations() -> list:
    """The 20 rules as Great Expectations expectations."""
    import great_expectations.expectations as gxe

    converted = []
    for spec in RULES:
        column, kind = spec.get("column"), spec["rule"]
        if kind == "not_null":
            converted.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
        elif kind == "range":
            converted.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=spec["min"], max_value=spec.get("max")))
        elif kind == "allowed_values":
            converted.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=spec["values"]))
        elif kind == "regex":
            converted.append(gxe.ExpectColumnValuesToMatchRegex(column=column, regex=spec["pattern"]))
        elif kind == "completeness":
            converted.append(gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=spec["min_ratio"]))
        elif kind == "freshness":
            oldest = RUN_TIME - timedelta(hours=spec["max_age_hours"])
            converted.append(gxe.ExpectColumnMaxToBeBetween(column=column, min_value=oldest))
        elif kind == "row_count":
            converted.append(gxe.ExpectTableRowCountToBeBetween(min_value=0, max_value=None))
    return converted


def great_expectations(df: DataFrame) -> dict[str, float]:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_spark("bench").add_dataframe_asset("synthetic")
        .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    )
    suite = context.suites.add(gx.ExpectationSuite(name="bench", expectations=expectations()))
    started = time.perf_counter()
    result = batch.validate(suite)
    seconds = time.perf_counter() - started
    raised = [r.expectation_config.type for r in result.results if r.exception_info.get("raised_exception")]
    print(f"great_expectations {gx.__version__}: {len(result.results)} expectations, "
          f"{sum(r.success for r in result.results)} succeeded, raised: {raised or 'none'}", file=sys.stderr)
    return {f"great_expectations {gx.__version__}": seconds}


def run_gx(python: str, rows: int, cores: int) -> dict[str, float]:
    """Run the Great Expectations part in the interpreter `python` (its own venv and Spark driver)."""
    env = {**os.environ, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}
    done = subprocess.run([python, __file__, "--engine", "gx", "--rows", str(rows), "--cores", str(cores)],
                          capture_output=True, text=True, env=env)
    print("\n".join(line for line in done.stderr.splitlines() if line.startswith("great_expectations")))
    if done.returncode != 0:
        print(f"great_expectations run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--gx-python", help="python of a venv with great_expectations and pyspark 4.2")
    parser.add_argument("--engine", choices=["lakeforge", "gx"], default="lakeforge", help=argparse.SUPPRESS)
    args = parser.parse_args()
    spark = session(args.cores)
    spark.sparkContext.setLogLevel("ERROR")
    df = synthetic(spark, args.rows)
    if args.engine == "gx":
        print(json.dumps(great_expectations(df)))
        return
    timings = lakeforge(df, args.rows)
    spark.stop()
    if args.gx_python:
        timings.update(run_gx(args.gx_python, args.rows, args.cores))
    baseline = timings["naive (1 query/rule)"]
    print(f"\n{args.rows:,} rows, {len(RULES)} rules, local[{args.cores}], data cached before timing")
    print(f"{'approach':<32}{'seconds':>10}{'rows/s':>16}{'speed-up vs naive':>20}")
    for name, seconds in timings.items():
        print(f"{name:<32}{seconds:>10.1f}{args.rows / seconds:>16,.0f}{baseline / seconds:>19.1f}x")


if __name__ == "__main__":
    main()
