"""Quality metrics history: the ``quality_metrics`` Delta table, anomaly checks on it, MLflow metrics."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime

import mlflow
from delta.tables import DeltaTable
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from lakeforge.quality.rules import MetricResult

METRICS_TABLE = "quality_metrics"
SCHEMA = (
    "table string, version bigint, batch_id string, rule string, metric string, value double, "
    "status string, expected string, note string, run_time timestamp"
)
RECORDED_AT = "recorded_at"


def flag_anomalies(
    spark: SparkSession, path: str, results: Sequence[MetricResult], history_runs: int, k: float, min_runs: int
) -> list[MetricResult]:
    """Warn on each passing metric outside mean +/- k*std of its last `history_runs` recorded runs.

    Only metrics with at least `min_runs` earlier values are judged; runs are ordered by when they
    were recorded (the run time may be set to a past moment).
    """
    if not DeltaTable.isDeltaTable(spark, path):
        return list(results)
    latest_first = Window.partitionBy("table", "rule", "metric").orderBy(F.desc(RECORDED_AT))
    stats = {
        (row["table"], row["rule"], row["metric"]): row
        for row in (
            spark.read.format("delta").load(path).where(F.col("value").isNotNull())
            .withColumn("recency", F.row_number().over(latest_first)).where(F.col("recency") <= history_runs)
            .groupBy("table", "rule", "metric")
            .agg(F.count("value").alias("runs"), F.avg("value").alias("mean"), F.stddev_pop("value").alias("std"))
            .collect()
        )
    }
    flagged = []
    for result in results:
        seen = stats.get((result.table, result.rule, result.metric))
        if result.status == "pass" and result.value is not None and seen is not None and seen["runs"] >= min_runs:
            if abs(result.value - seen["mean"]) > k * seen["std"]:
                note = f"anomaly: outside {seen['mean']:.6g} +/- {k}*{seen['std']:.3g} (last {seen['runs']} runs)"
                result = dataclasses.replace(result, status="warn", note=note)
        flagged.append(result)
    return flagged


def append_metrics(
    spark: SparkSession, path: str, results: Sequence[MetricResult], versions: dict[str, int | None],
    batch_ids: dict[str, str], run_time: datetime, app_id: str | None = None,
) -> None:
    """Append this run's metrics, each with the table version it describes (null if nothing was written);
    with `app_id`, only once however often it is called (Delta's idempotent writes)."""
    rows = [
        (r.table, versions.get(r.table), batch_ids.get(r.table), r.rule, r.metric,
         None if r.value is None else float(r.value), r.status, r.expected, r.note, run_time)
        for r in results
    ]
    metrics = spark.createDataFrame(rows, SCHEMA).withColumn(RECORDED_AT, F.current_timestamp())
    writer = metrics.write.format("delta").mode("append")
    if app_id is not None:
        writer = writer.option("txnAppId", app_id).option("txnVersion", 0)
    writer.save(path)


def log_to_mlflow(results: Sequence[MetricResult]) -> None:
    """Log every valued metric to the active MLflow run as ``quality.<table>.<rule>.<metric>``."""
    mlflow.log_metrics({
        mlflow_key(f"quality.{r.table}.{r.rule}.{r.metric}"): float(r.value) for r in results if r.value is not None
    })


def mlflow_key(name: str) -> str:
    """`name` with the characters MLflow refuses in metric keys replaced by ``_``."""
    return re.sub(r"_*\._*", ".", re.sub(r"[^\w.\-/]+", "_", name)).strip("_")
