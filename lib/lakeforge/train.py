"""Train the configured estimator on the pinned dataset table and register it in MLflow.

A scikit-learn estimator (`model.estimator`, default HistGradientBoosting for the task) is fitted on
collected rows (at most `model.max_train_rows`, a seeded hash sample above that), after the
distributed hyperparameter search if configured (`lakeforge.search`), inside a Pipeline with the
configured preprocessing, and logged as a portable pyfunc (`lakeforge.modeling.portable`). A
pyspark.ml estimator is fitted on the Spark DataFrame without collecting rows (`lakeforge.spark_ml`).
Metrics are the task's (`lakeforge.tasks`), on the fitted rows and on the validation split.
"""
from __future__ import annotations

from functools import partial

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.pipeline import Pipeline

from lakeforge import faults, search, spark_ml
from lakeforge.config import LakeforgeConfig, ModelSettings, ParamValue
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.features.transform import build_preprocessor, categorical_positions
from lakeforge.modeling.estimator import estimator_class, is_spark_ml, sklearn_estimator
from lakeforge.modeling.portable import TabularModel
from lakeforge.modeling.logging import log_tabular_model
from lakeforge.results import StepResult
from lakeforge.split import hash_sample, hash_split
from lakeforge.tables import read_pinned
from lakeforge.tasks import task_for
from lakeforge.tasks.base import Task
from lakeforge.tasks.catalog import HEADLINE_METRIC
from lakeforge.tracking import log_tables, replay_of, step_run
from lakeforge.windows import describe, in_window, no_rows

__all__ = ["DECISION_THRESHOLD_TAG", "build_pipeline", "decision_of", "decision_tags", "feature_columns", "model_input",
           "run", "tabular_model"]

DECISION_THRESHOLD_TAG = "decision_threshold"


def build_pipeline(settings: ModelSettings, estimator: str, seed: int,
                   params: dict[str, ParamValue] | None = None) -> Pipeline:
    """The configured preprocessing (fitted with the model, saved in it) and the scikit-learn `estimator`
    (a dotted path) with `params` (default: `settings.params`)."""
    fitted = sklearn_estimator(estimator, settings.params if params is None else params, seed,
                               categorical_positions(settings))
    return Pipeline([("columns", build_preprocessor(settings)), ("estimator", fitted)])


def tabular_model(config: LakeforgeConfig, pipeline: Pipeline) -> TabularModel:
    """A fitted pipeline as the pyfunc that returns the task's outputs."""
    return TabularModel(pipeline, config.task.type, feature_columns(config.model),
                        config.evaluation.objective.class_costs)


def feature_columns(settings: ModelSettings) -> list[str]:
    return settings.categorical_features + settings.numeric_features + settings.text_features


def model_input(df: DataFrame, settings: ModelSettings, *extra: str) -> DataFrame:
    """The model's input columns typed the same way for training and scoring (numerics as double)."""
    return df.select(
        *extra,
        *[F.col(c).cast("string") for c in settings.categorical_features],
        *[F.col(c).cast("double") for c in settings.numeric_features],
        *[F.col(c).cast("string") for c in settings.text_features],
    )


def to_training_frame(df: DataFrame, key: str) -> pd.DataFrame:
    """Collect rows sorted by `key`, so Spark's partitioning cannot change the model."""
    return df.orderBy(key).toPandas()


def capped_rows(df: DataFrame, key: str, rows: int, max_rows: int, seed: int) -> tuple[DataFrame, float]:
    """`df` (`rows` rows) or, above `max_rows`, a seeded hash sample of at most `max_rows` rows; and the sample rate."""
    if rows <= max_rows:
        return df, 1.0
    rate = max_rows / rows
    return hash_sample(df, key, rate, seed).orderBy(key).limit(max_rows), rate


def trial_metrics(config: LakeforgeConfig, params: dict[str, ParamValue],
                  rows: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, float]:
    """One search trial: validation metrics of the model fitted with `params`; `rows` = (fit rows, validation rows)."""
    fit_rows, val_rows = rows
    model = tabular_model(config, build_pipeline(config.model, config.estimator, config.seed, params).fit(fit_rows[feature_columns(config.model)],
                                                                    fit_rows[LABEL]))
    return task_for(config.task.type, config.evaluation.objective).frame_metrics(val_rows[LABEL],
                                                                                 model.predict(None, val_rows))


def search_metric(config: LakeforgeConfig) -> str:
    """`model.search.metric`, else the task's primary metric (auc for binary: its cost needs a threshold)."""
    if config.model.search.metric:
        return config.model.search.metric
    return "auc" if config.task.type == "binary_classification" else config.primary_metric


def searched_params(spark: SparkSession, fit_rows: pd.DataFrame, val_rows: pd.DataFrame,
                    config: LakeforgeConfig) -> dict[str, ParamValue]:
    """Run `model.search` on the executors, log every trial (`search_trials.json`) and return the best params."""
    settings = config.model
    candidates = [settings.params | trial for trial in search.grid_trials(settings.search, config.seed)]
    results = search.run_trials(spark, candidates, (fit_rows, val_rows), partial(trial_metrics, config))
    metric = search_metric(config)
    best = search.best_trial(results, metric, task_for(config.task.type).greater_is_better(metric))
    mlflow.log_table(search.trials_table(results), artifact_file="search_trials.json")
    mlflow.log_params({"search_metric": metric, "search_trials": len(candidates), "search_best_trial": best})
    return candidates[best]


def fit_sklearn(spark: SparkSession, rows: DataFrame, available: int, config: LakeforgeConfig,
                registered_name: str | None) -> tuple[ModelInfo, dict[str, float]]:
    """Collect (at most `model.max_train_rows` of) `rows`, search if configured, fit, log the model; its metrics."""
    settings, task = config.model, task_for(config.task.type, config.evaluation.objective)
    capped, sample_rate = capped_rows(rows, KEY, available, settings.max_train_rows, config.seed)
    frame = to_training_frame(capped, KEY)
    fit_rows, val_rows = frame[~frame["is_validation"]], frame[frame["is_validation"]]
    params = searched_params(spark, fit_rows, val_rows, config) if settings.search else settings.params
    model = tabular_model(config, build_pipeline(config.model, config.estimator, config.seed, params).fit(fit_rows[feature_columns(settings)],
                                                                    fit_rows[LABEL]))
    metrics = {f"{side}_{name}": value
               for side, side_rows in (("train", fit_rows), ("val", val_rows)) if len(side_rows)
               for name, value in task.frame_metrics(side_rows[LABEL], model.predict(None, side_rows)).items()
               if name != "rows"}  # logged as the rows_fit and rows_validation parameters
    mlflow.log_params({"rows_fit": len(fit_rows), "rows_validation": len(val_rows),
                       "train_sample_rate": sample_rate, **params})
    mlflow.log_metrics(metrics)
    info = log_tabular_model(model, fit_rows[model.columns].head(50), registered_name)
    return info, metrics


def fit_spark_ml(spark: SparkSession, rows: DataFrame, available: int, config: LakeforgeConfig,
                 registered_name: str | None) -> tuple[ModelInfo, dict[str, float]]:
    """Fit the pyspark.ml Pipeline on the Spark rows (nothing collected), log the model; its metrics."""
    settings, task = config.model, task_for(config.task.type, config.evaluation.objective)
    rows_validation = rows.where("is_validation").count()
    model = spark_ml.fit(rows.where(~F.col("is_validation")), config)
    scored = spark_ml.with_outputs(rows, model, task).persist()
    metrics: dict[str, float] = {}
    try:
        for side, validation in (("train", False), ("val", True)):
            side_rows = scored.where(F.col("is_validation") == validation)
            metrics |= {f"{side}_{k}": v for k, v in task.spark_metrics(side_rows).items() if k != "rows"}
    finally:
        scored.unpersist()
    mlflow.log_params({"rows_fit": available - rows_validation, "rows_validation": rows_validation, **settings.params})
    mlflow.log_metrics(metrics)
    sample = spark_ml.with_outputs(rows.limit(50), model, task).toPandas()
    signature = infer_signature(sample[feature_columns(settings)], sample[task.output_columns()])
    return spark_ml.log_model(model, registered_name, signature), metrics


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Fit on `windows.train` (rows with a label), validate on a hash split, log and register the model."""
    settings = config.model
    columns = feature_columns(settings)
    task = task_for(config.task.type)
    with step_run(config, "train") as active:
        table = config.dataset.table
        features, version = read_pinned(spark, table, config.table_path(table))
        missing = [c for c in [*columns, LABEL, KEY] if c not in features.columns]
        if missing:
            raise StepError(f"train: columns {missing} are not in dataset table {version.path}")
        labelled = in_window(features, config.windows.train).where(F.col(LABEL).isNotNull())
        split = hash_split(labelled, KEY, config.split.validation_fraction, config.seed)
        rows = model_input(split, settings, KEY, LABEL, "is_validation")
        available = rows.count()
        if not available:
            raise no_rows("train", "train", config.windows.train, f"{table} v{version.version} (rows with a label)")
        log_tables([version], "input")
        estimator = estimator_class(config.estimator)
        mlflow.log_params({"task": task.type, "estimator": config.estimator, "seed": config.seed,
                           "train_window": describe(config.windows.train),
                           "validation_fraction": config.split.validation_fraction, "rows_available": available})
        registered_name = None if replay_of() else settings.registered_name
        fit = fit_spark_ml if is_spark_ml(estimator) else fit_sklearn
        info, metrics = fit(spark, rows, available, config, registered_name)
        headline = {k: round(v, 4) for k, v in metrics.items() if k == f"val_{HEADLINE_METRIC[task.type]}"}
        if replay_of():  # a replay logs its model to compare it, and leaves the registry alone
            return StepResult("train", rows_in=available, rows_out=1, details={"replay_of": replay_of(), **headline})
        faults.checkpoint("train:registered")
        client = mlflow.MlflowClient()
        model_version = str(info.registered_model_version)
        tags = {"train_run_id": active.info.run_id, "task": task.type, **decision_tags(task.default_decision)}
        for name, value in tags.items():
            client.set_model_version_tag(settings.registered_name, model_version, name, value)
        challenger = config.evaluation.gate.challenger_alias  # the evaluate step's gate may promote it
        client.set_registered_model_alias(settings.registered_name, challenger, model_version)
    return StepResult(
        "train", rows_in=available, rows_out=1,
        details={"model": f"{settings.registered_name} v{model_version} @{challenger}", **headline,
                 "input": f"{version.name} v{version.version}"},
    )


def decision_tags(decision: dict[str, float]) -> dict[str, str]:
    """A model version's decision settings as registry tags (binary: ``decision_threshold``)."""
    return {f"decision_{name}": str(value) for name, value in decision.items()}


def decision_of(version_tags: dict[str, str], task: Task) -> dict[str, float]:
    """The decision settings tagged on a model version (the task's defaults where untagged)."""
    return {name: float(version_tags.get(f"decision_{name}", default)) for name, default in task.default_decision.items()}
