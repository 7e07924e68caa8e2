"""Cascade of two models versioned as ONE MLflow pyfunc: stage A predicts the target (delay > 15 min);
only for the rows A flags, stage B predicts a long delay (> `cascade.long_delay_minutes`).

Both stages are trained from the same pinned feature table, logged and registered together, and
scored together on the executors, so they cannot drift apart.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.pipeline import Pipeline

from lakeforge.config import LakeforgeConfig, ModelSettings, TargetSettings
from lakeforge.errors import StepError
from lakeforge.features import labelled_flights
from lakeforge.ingest import bronze_table
from lakeforge.results import StepResult
from lakeforge.score import merge_predictions
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run
from lakeforge.train import build_model, capped_rows, feature_columns, model_input, to_training_frame

LONG_DELAY = "long_delay"
OUTPUT_SCHEMA = "delay_score double, long_delay_score double, outcome int"
OUTCOMES = {0: "on time", 1: "delayed", 2: "long delay"}


class CascadeModel(mlflow.pyfunc.PythonModel):
    """Outcome 0 when stage A's score is below `threshold_a`, else 2 if stage B's score reaches `threshold_b`, else 1."""

    def __init__(self, stage_a: Pipeline, stage_b: Pipeline, columns: list[str], threshold_a: float, threshold_b: float):
        self.stage_a, self.stage_b, self.columns = stage_a, stage_b, columns
        self.threshold_a, self.threshold_b = threshold_a, threshold_b

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        features = model_input[self.columns]
        delay_score = self.stage_a.predict_proba(features)[:, 1]
        flagged = delay_score >= self.threshold_a
        long_delay_score = np.full(len(features), np.nan)
        if flagged.any():
            long_delay_score[flagged] = self.stage_b.predict_proba(features[flagged])[:, 1]
        outcome = np.where(~flagged, 0, np.where(long_delay_score >= self.threshold_b, 2, 1))
        return pd.DataFrame({"delay_score": delay_score, "long_delay_score": long_delay_score,
                             "outcome": outcome.astype("int32")})


def fit_cascade(frame: pd.DataFrame, settings: ModelSettings, label: str, seed: int,
                threshold_a: float, threshold_b: float) -> CascadeModel:
    """Stage A on every row for `label`; stage B on the rows where `label` is 1, for `long_delay`."""
    columns = feature_columns(settings)
    delayed = frame[frame[label] == 1]
    if delayed[LONG_DELAY].nunique() < 2:
        raise StepError(f"cascade: stage B needs delayed rows with and without a {LONG_DELAY}, got {len(delayed)} rows")
    stage_a = build_model(settings, seed).fit(frame[columns], frame[label])
    stage_b = build_model(settings, seed).fit(delayed[columns], delayed[LONG_DELAY])
    return CascadeModel(stage_a, stage_b, columns, threshold_a, threshold_b)


def score_cascade(df: DataFrame, model_uri: str, key: str, settings: ModelSettings) -> DataFrame:
    """Key, the two stage scores and the outcome per row, the cascade running on the executors."""
    cascade = mlflow.pyfunc.spark_udf(df.sparkSession, model_uri, result_type=OUTPUT_SCHEMA, env_manager="local")
    inputs = model_input(df, settings, key)
    scored = inputs.withColumn("cascade", cascade(F.struct(*feature_columns(settings))))
    return scored.select(key, "cascade.*")


def long_delay_labels(flights: DataFrame, target: TargetSettings, minutes: float) -> DataFrame:
    """`flight_id` and `long_delay` (delay column > `minutes`) of the flights that took place."""
    long_target = target.model_copy(update={"name": LONG_DELAY, "threshold": minutes})
    return labelled_flights(flights, long_target).select("flight_id", LONG_DELAY)


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Train both stages on the training months, register them as one pyfunc, score the score months."""
    settings, key, label, cascade = config.model, config.split.key, config.target.name, config.cascade
    with step_run(config, "cascade") as active:
        features, version = read_pinned(spark, config.features.table, config.table_path(config.features.table))
        flights, flights_version = read_pinned(spark, bronze_table("flights"), config.table_path(bronze_table("flights")))
        labels = long_delay_labels(flights, config.target, cascade.long_delay_minutes)
        training = features.where(F.col("month").isin(settings.train_months)).join(labels, "flight_id")
        rows = model_input(training, settings, key, label, LONG_DELAY)
        capped, sample_rate = capped_rows(rows, key, rows.count(), settings.max_train_rows, config.seed)
        frame = to_training_frame(capped, key)
        if frame.empty:
            raise StepError(f"cascade: no rows for months {settings.train_months} in {version.path} v{version.version}")
        model = fit_cascade(frame, settings, label, config.seed, cascade.threshold_a, cascade.threshold_b)
        log_tables([version, flights_version], "input")
        mlflow.log_params({"stage_a": label, "stage_b": f"{LONG_DELAY} > {cascade.long_delay_minutes} min",
                           "threshold_a": cascade.threshold_a, "threshold_b": cascade.threshold_b,
                           "rows_stage_a": len(frame), "rows_stage_b": int(frame[label].sum()),
                           "train_sample_rate": sample_rate})
        sample = frame[model.columns].head(50)
        info = mlflow.pyfunc.log_model(name="cascade", python_model=model, registered_model_name=cascade.registered_name,
                                       signature=infer_signature(sample, model.predict(None, sample)))
        model_version = str(info.registered_model_version)
        batch = features.where(F.col("month").isin(config.score.months))
        predictions = (score_cascade(batch, info.model_uri, key, settings)
                       .withColumn("model_name", F.lit(cascade.registered_name))
                       .withColumn("model_version", F.lit(model_version))
                       .withColumn("features_version", F.lit(version.version))
                       .withColumn("cascade_run_id", F.lit(active.info.run_id)))
        path = config.table_path(cascade.table)
        merge_predictions(predictions, path, key)
        output = TableVersion(cascade.table, path, latest_version(spark, path))
        log_tables([output], "output")
        rows_out = int(last_commit_metrics(spark, path).get("numOutputRows", 0))
    return StepResult("cascade", rows_in=len(frame), rows_out=rows_out,
                      details={"model": f"{cascade.registered_name} v{model_version}",
                               "table": f"{output.name} v{output.version}"})
