"""Cascade of two models versioned as ONE MLflow pyfunc: stage A predicts the task's label; only for the
rows A flags, stage B predicts `cascade.stage_b_label` (e.g. a large delay among the delayed rows).

Both stages are trained from the same pinned dataset table, logged and registered together, and
scored together on the executors, so they cannot drift apart.
"""
from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig, ModelSettings
from lakeforge.modeling.estimator import estimator_class, is_spark_ml
from lakeforge.modeling.logging import requirements
from lakeforge.modeling.portable import CascadeModel
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.results import StepResult
from lakeforge.tasks.catalog import DEFAULT_ESTIMATOR
from lakeforge.score import merge_predictions
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run
from lakeforge.train import build_pipeline, capped_rows, feature_columns, model_input, to_training_frame
from lakeforge.windows import in_window, no_rows

STAGE_B = "stage_b_label"
OUTPUT_SCHEMA = "stage_a_score double, stage_b_score double, outcome int"
OUTCOMES = {0: "negative", 1: "positive", 2: "positive, stage B positive"}


def fit_cascade(frame: pd.DataFrame, settings: ModelSettings, label: str, seed: int, threshold_a: float,
                threshold_b: float, estimator: str = DEFAULT_ESTIMATOR["binary_classification"]) -> CascadeModel:
    """Stage A on every row for `label`; stage B on the rows where `label` is 1, for the stage B label."""
    columns = feature_columns(settings)
    positive = frame[frame[label] == 1]
    if positive[STAGE_B].nunique() < 2:
        raise StepError(f"cascade: stage B needs positive rows with both values of cascade.stage_b_label, "
                        f"got {len(positive)} rows")
    stage_a = build_pipeline(settings, estimator, seed).fit(frame[columns], frame[label])
    stage_b = build_pipeline(settings, estimator, seed).fit(positive[columns], positive[STAGE_B])
    return CascadeModel(stage_a, stage_b, columns, threshold_a, threshold_b)


def score_cascade(df: DataFrame, model_uri: str, key: str, settings: ModelSettings) -> DataFrame:
    """Key, the two stage scores and the outcome per row, the cascade running on the executors."""
    cascade = mlflow.pyfunc.spark_udf(df.sparkSession, model_uri, result_type=OUTPUT_SCHEMA, env_manager="local")
    inputs = model_input(df, settings, key)
    scored = inputs.withColumn("cascade", cascade(F.struct(*feature_columns(settings))))
    return scored.select(key, "cascade.*")


def with_stage_b_label(rows: DataFrame, expression: str) -> DataFrame:
    """`rows` with the stage B label (`expression`, a SQL condition over the row) as 0/1."""
    return rows.withColumn(STAGE_B, F.expr(expression).cast("int"))


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Train both stages on `windows.train`, register them as one pyfunc, score `windows.score`."""
    settings, key, label, cascade = config.model, KEY, LABEL, config.cascade
    if cascade.stage_b_label is None:
        raise StepError("cascade: cascade.stage_b_label is not set (a SQL expression over the dataset row)")
    if is_spark_ml(estimator_class(config.estimator)):
        raise StepError(f"cascade: its stages are scikit-learn models; model.estimator is {config.estimator}")
    with step_run(config, "cascade") as active:
        table = config.dataset.table
        features, version = read_pinned(spark, table, config.table_path(table))
        training = with_stage_b_label(in_window(features, config.windows.train), cascade.stage_b_label)
        rows = model_input(training, settings, key, label, STAGE_B)
        capped, sample_rate = capped_rows(rows, key, rows.count(), settings.max_train_rows, config.seed)
        frame = to_training_frame(capped, key)
        if frame.empty:
            raise no_rows("cascade", "train", config.windows.train, f"{table} v{version.version}")
        model = fit_cascade(frame, settings, label, config.seed, cascade.threshold_a, cascade.threshold_b,
                            config.estimator)
        log_tables([version], "input")
        mlflow.log_params({"stage_a": config.task.label, "stage_b": cascade.stage_b_label,
                           "threshold_a": cascade.threshold_a, "threshold_b": cascade.threshold_b,
                           "rows_stage_a": len(frame), "rows_stage_b": int(frame[label].sum()),
                           "train_sample_rate": sample_rate})
        sample = frame[model.columns].head(50)
        info = mlflow.pyfunc.log_model(name="cascade", python_model=model, registered_model_name=cascade.registered_name,
                                       signature=infer_signature(sample, model.predict(None, sample)),
                                       input_example=sample.head(3), pip_requirements=requirements())
        model_version = str(info.registered_model_version)
        batch = in_window(features, config.windows.score)
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
