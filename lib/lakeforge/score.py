"""Distributed batch scoring with the registered model, merged idempotently into a Delta table."""
from __future__ import annotations

import mlflow
from delta.tables import DeltaTable
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.models import load_registered
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run
from lakeforge.train import DECISION_THRESHOLD_TAG
from lakeforge.windows import describe, in_window, no_rows

PREDICTION_KEYS = ["model_name", "model_version"]


def merge_predictions(predictions: DataFrame, path: str, key: str) -> None:
    """Insert or update predictions by (key, model name, model version): re-runs never duplicate rows."""
    spark = predictions.sparkSession
    if not DeltaTable.isDeltaTable(spark, path):
        predictions.write.format("delta").save(path)
        return
    on = " AND ".join(f"t.{c} = s.{c}" for c in [key, *PREDICTION_KEYS])
    (
        DeltaTable.forPath(spark, path).alias("t")
        .merge(predictions.alias("s"), on)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def _rows_merged(commit_metrics: dict[str, str]) -> int:
    if "numTargetRowsInserted" in commit_metrics:
        return int(commit_metrics["numTargetRowsInserted"]) + int(commit_metrics.get("numTargetRowsUpdated", 0))
    return int(commit_metrics.get("numOutputRows", 0))


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Score `windows.score` with the model behind the configured alias."""
    settings, key, label = config.model, KEY, LABEL
    with step_run(config, "score") as active:
        client = mlflow.MlflowClient()
        try:
            registered = client.get_model_version_by_alias(settings.registered_name, settings.alias)
        except mlflow.exceptions.MlflowException as exc:
            raise StepError(f"score: no model '{settings.registered_name}' with alias '{settings.alias}'; "
                            f"run the train step first ({exc.message})") from None
        threshold = float(registered.tags.get(DECISION_THRESHOLD_TAG, 0.5))
        model = load_registered(registered, settings)
        table = config.dataset.table
        features, version = read_pinned(spark, table, config.table_path(table))
        batch = in_window(features, config.windows.score)
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.score.arrow_batch_rows))
        predictions = (
            model.scores(batch, key)
            .withColumn("prediction", (F.col("score") >= threshold).cast("int"))
            .withColumn("decision_threshold", F.lit(threshold))
            .withColumn("model_name", F.lit(settings.registered_name))
            .withColumn("model_version", F.lit(str(registered.version)))
            .withColumn("features_table", F.lit(version.name))
            .withColumn("features_version", F.lit(version.version))
            .withColumn("score_run_id", F.lit(active.info.run_id))
            .withColumn("scored_at", F.current_timestamp())
        )
        path = config.table_path(config.score.table)
        merge_predictions(predictions, path, key)
        rows_out = _rows_merged(last_commit_metrics(spark, path))
        output = TableVersion(config.score.table, path, latest_version(spark, path))
        scored, _ = read_pinned(spark, output.name, path, output.version)
        this_model = scored.where((F.col("model_name") == settings.registered_name)
                                  & (F.col("model_version") == str(registered.version))
                                  & F.col("features_version").eqNullSafe(version.version))
        evaluated = this_model.join(batch.select(key, F.col(label).cast("double").alias("label")), key)
        rows_scored = evaluated.count()
        if rows_scored == 0:
            raise no_rows("score", "score", config.windows.score, f"{table} v{version.version}")
        auc = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label").evaluate(evaluated)
        log_tables([version], "input")
        log_tables([output], "output")
        mlflow.log_params({"model_name": settings.registered_name, "model_version": registered.version,
                           "score_window": describe(config.windows.score), "decision_threshold": threshold})
        mlflow.log_metrics({"test_auc": auc, "rows_scored": rows_scored})
    return StepResult("score", rows_in=rows_scored, rows_out=rows_out,
                      details={"model": f"{settings.registered_name} v{registered.version}",
                               "test_auc": round(auc, 4), "table": f"{output.name} v{output.version}"})
