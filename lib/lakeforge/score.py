"""Distributed batch scoring with the registered model, merged idempotently into a Delta table.

The score run logs the task's metrics on the rows that have a label (`test_*`) and the same metrics
of the naive model fitted on the training window's labels (`baseline_test_*`: the training positive
rate, the class shares with the majority class, or the mean).

The predictions table holds `key`, the task's outputs (binary: `score` = P(positive), `decision` at
the model's `decision_threshold`; multiclass: `prediction`, `probabilities`; regression:
`prediction`), the model name and version, the dataset table and version read, the score run and time.
"""
from __future__ import annotations

import math

import mlflow
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge import faults
from lakeforge.config import LakeforgeConfig
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.tasks import task_for
from lakeforge.tasks.catalog import HEADLINE_METRIC
from lakeforge.models import load_registered
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, is_write_conflict, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run
from lakeforge.train import decision_of
from lakeforge.windows import describe, in_window, no_rows

PREDICTION_KEYS = ["model_name", "model_version"]
MERGE_ATTEMPTS = 5


def merge_predictions(predictions: DataFrame, path: str, key: str, attempts: int = MERGE_ATTEMPTS) -> None:
    """Insert or update predictions by (key, model name, model version): re-runs never duplicate rows.

    A write that lost a race with another writer (a concurrent score) is merged again, up to `attempts` times.
    """
    spark = predictions.sparkSession
    on = " AND ".join(f"t.{c} = s.{c}" for c in [key, *PREDICTION_KEYS])
    for attempt in range(1, attempts + 1):
        creating = not DeltaTable.isDeltaTable(spark, path)
        try:
            if creating:
                predictions.write.format("delta").save(path)
            else:
                (DeltaTable.forPath(spark, path).alias("t").merge(predictions.alias("s"), on)
                 .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
            return
        except Exception as error:  # noqa: BLE001 - only losing a race to another writer is retried
            lost_race = is_write_conflict(error) or (creating and DeltaTable.isDeltaTable(spark, path))
            if not lost_race or attempt == attempts:
                raise


def _rows_merged(commit_metrics: dict[str, str]) -> int:
    if "numTargetRowsInserted" in commit_metrics:
        return int(commit_metrics["numTargetRowsInserted"]) + int(commit_metrics.get("numTargetRowsUpdated", 0))
    return int(commit_metrics.get("numOutputRows", 0))


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Score `windows.score` with the model behind the configured alias; its metrics on the rows with a label."""
    settings, key = config.model, KEY
    task = task_for(config.task.type, config.evaluation.objective)
    with step_run(config, "score") as active:
        client = mlflow.MlflowClient()
        try:
            registered = client.get_model_version_by_alias(settings.registered_name, settings.alias)
        except mlflow.exceptions.MlflowException as exc:
            raise StepError(f"score: no model '{settings.registered_name}' with alias '{settings.alias}'; "
                            f"run the train step first ({exc.message})") from None
        decision = decision_of(registered.tags, task)
        model = load_registered(registered, settings, task.type)
        table = config.dataset.table
        features, version = read_pinned(spark, table, config.table_path(table))
        batch = in_window(features, config.windows.score)
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.score.arrow_batch_rows))
        predictions = task.with_decision(model.predict(batch, key), **decision).withColumns({
            "model_name": F.lit(settings.registered_name), "model_version": F.lit(str(registered.version)),
            "features_table": F.lit(version.name), "features_version": F.lit(version.version),
            "score_run_id": F.lit(active.info.run_id), "scored_at": F.current_timestamp()})
        path = config.table_path(config.score.table)
        merge_predictions(predictions, path, key)
        faults.checkpoint("score:merged")
        rows_out = _rows_merged(last_commit_metrics(spark, path))
        output = TableVersion(config.score.table, path, latest_version(spark, path))
        scored, _ = read_pinned(spark, output.name, path, output.version)
        this_model = scored.where((F.col("model_name") == settings.registered_name)
                                  & (F.col("model_version") == str(registered.version))
                                  & F.col("features_version").eqNullSafe(version.version))
        rows_scored = this_model.count()
        if rows_scored == 0:
            raise no_rows("score", "score", config.windows.score, f"{table} v{version.version}")
        labelled = this_model.join(batch.select(key, LABEL).where(F.col(LABEL).isNotNull()), key)
        metrics = task.spark_metrics(labelled, **decision)
        training_labels = in_window(features, config.windows.train).where(F.col(LABEL).isNotNull())
        naive = task.baseline_outputs(training_labels.select(LABEL))
        baseline = task.spark_metrics(labelled.select(key, LABEL).withColumns(naive), **decision)
        log_tables([version], "input")
        log_tables([output], "output")
        mlflow.log_params({"model_name": settings.registered_name, "model_version": registered.version,
                           "score_window": describe(config.windows.score),
                           **{f"decision_{k}": v for k, v in decision.items()}})
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if not math.isnan(v)}
                           | {f"baseline_test_{k}": v for k, v in baseline.items() if not math.isnan(v)}
                           | {"rows_scored": rows_scored})
    headline = HEADLINE_METRIC[task.type]
    return StepResult("score", rows_in=rows_scored, rows_out=rows_out,
                      details={"model": f"{settings.registered_name} v{registered.version}",
                               f"test_{headline}": round(metrics.get(headline, math.nan), 4),
                               f"baseline_test_{headline}": round(baseline.get(headline, math.nan), 4),
                               "table": f"{output.name} v{output.version}"})
