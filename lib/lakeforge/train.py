"""Train a classifier on the pinned feature table and register it in MLflow.

Trainer `sklearn` (default) collects the training rows (at most `model.max_train_rows`, a seeded hash
sample above that), optionally runs the distributed hyperparameter search (`lakeforge.search`) and
fits a scikit-learn Pipeline; trainer `spark_ml` fits a pyspark.ml Pipeline on the Spark DataFrame
(`lakeforge.spark_ml`). Both register the same way, and `lakeforge.models` scores either.
"""
from __future__ import annotations

from functools import partial

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline

from lakeforge import search, spark_ml
from lakeforge.config import LakeforgeConfig, ModelSettings, ParamValue
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.features.transform import build_preprocessor, categorical_positions
from lakeforge.results import StepResult
from lakeforge.split import hash_sample, hash_split
from lakeforge.tables import read_pinned
from lakeforge.tracking import log_tables, replay_of, step_run
from lakeforge.windows import describe, in_window, no_rows

DECISION_THRESHOLD_TAG = "decision_threshold"


def build_model(settings: ModelSettings, seed: int, params: dict[str, ParamValue] | None = None) -> Pipeline:
    """The configured preprocessing (fitted with the model, saved in it) and a histogram gradient boosting model.

    `params` (default: `settings.params`) are the classifier's parameters.
    """
    classifier = HistGradientBoostingClassifier(
        categorical_features=categorical_positions(settings), random_state=seed,
        **(settings.params if params is None else params),
    )
    return Pipeline([("columns", build_preprocessor(settings)), ("classifier", classifier)])


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


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    predicted = (proba >= threshold).astype(int)
    return {
        "auc": float(roc_auc_score(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "positive_rate": float(np.mean(y_true)),
    }


def trial_metrics(settings: ModelSettings, seed: int, label: str, params: dict[str, ParamValue],
                  rows: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, float]:
    """One search trial: validation metrics of the model fitted with `params`; `rows` = (fit rows, validation rows)."""
    fit_rows, val_rows = rows
    columns = feature_columns(settings)
    model = build_model(settings, seed, params).fit(fit_rows[columns], fit_rows[label])
    return classification_metrics(val_rows[label].to_numpy(), model.predict_proba(val_rows[columns])[:, 1])


def searched_params(spark: SparkSession, fit_rows: pd.DataFrame, val_rows: pd.DataFrame,
                    config: LakeforgeConfig) -> dict[str, ParamValue]:
    """Run `model.search` on the executors, log every trial (`search_trials.json`) and return the best params."""
    settings = config.model
    candidates = [settings.params | trial for trial in search.grid_trials(settings.search, config.seed)]
    results = search.run_trials(spark, candidates, (fit_rows, val_rows),
                                partial(trial_metrics, settings, config.seed, LABEL))
    best = search.best_trial(results, settings.search.metric)
    mlflow.log_table(search.trials_table(results), artifact_file="search_trials.json")
    mlflow.log_params({"search_metric": settings.search.metric, "search_trials": len(candidates),
                       "search_best_trial": best})
    return candidates[best]


def fit_sklearn(spark: SparkSession, rows: DataFrame, available: int, config: LakeforgeConfig,
                registered_name: str | None) -> tuple[ModelInfo, dict[str, float]]:
    """Collect (at most `model.max_train_rows` of) `rows`, search if configured, fit, log the model; its metrics."""
    settings, label, key = config.model, LABEL, KEY
    columns = feature_columns(settings)
    capped, sample_rate = capped_rows(rows, key, available, settings.max_train_rows, config.seed)
    frame = to_training_frame(capped, key)
    fit_rows, val_rows = frame[~frame["is_validation"]], frame[frame["is_validation"]]
    params = searched_params(spark, fit_rows, val_rows, config) if settings.search else settings.params
    model = build_model(settings, config.seed, params).fit(fit_rows[columns], fit_rows[label])
    metrics = {f"train_{k}": v for k, v in
               classification_metrics(fit_rows[label].to_numpy(), model.predict_proba(fit_rows[columns])[:, 1]).items()}
    metrics |= {f"val_{k}": v for k, v in
                classification_metrics(val_rows[label].to_numpy(), model.predict_proba(val_rows[columns])[:, 1]).items()}
    mlflow.log_params({"model": "HistGradientBoostingClassifier", "rows_fit": len(fit_rows),
                       "rows_validation": len(val_rows), "train_sample_rate": sample_rate, **params})
    mlflow.log_metrics(metrics)
    sample = fit_rows[columns].head(50)
    info = mlflow.sklearn.log_model(
        model, name="model", serialization_format="cloudpickle",
        signature=infer_signature(sample, model.predict_proba(sample)), registered_model_name=registered_name,
    )
    return info, metrics


def fit_spark_ml(spark: SparkSession, rows: DataFrame, available: int, config: LakeforgeConfig,
                 registered_name: str | None) -> tuple[ModelInfo, dict[str, float]]:
    """Fit the pyspark.ml Pipeline on the Spark rows (nothing collected), log the model; its metrics."""
    settings, label, columns = config.model, LABEL, feature_columns(config.model)
    rows_validation = rows.where("is_validation").count()
    model = spark_ml.fit(rows.where(~F.col("is_validation")), settings, label, config.seed)
    scored = spark_ml.with_scores(rows, model).select("is_validation", F.col(label).alias("label"), "score").persist()
    metrics: dict[str, float] = {}
    try:
        for side, validation in (("train", False), ("val", True)):
            side_rows = scored.where(F.col("is_validation") == validation)
            metrics |= {f"{side}_{k}": v for k, v in spark_ml.classification_metrics(side_rows).items()}
    finally:
        scored.unpersist()
    mlflow.log_params({"model": spark_ml.CLASSIFIERS[settings.spark_ml.classifier].__name__,
                       "rows_fit": available - rows_validation, "rows_validation": rows_validation,
                       **settings.spark_ml.params})
    mlflow.log_metrics(metrics)
    sample = spark_ml.with_scores(rows.limit(50), model).toPandas()
    info = mlflow.spark.log_model(
        model, "model", registered_model_name=registered_name,
        signature=infer_signature(sample[columns], sample["score"]),
        pip_requirements=mlflow.spark.get_default_pip_requirements(),  # inferring them would start another Spark
    )
    return info, metrics


TRAINERS = {"sklearn": fit_sklearn, "spark_ml": fit_spark_ml}


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Fit on `windows.train` with the configured trainer, validate on a hash split, log and register the model."""
    settings, label, key = config.model, LABEL, KEY
    columns = feature_columns(settings)
    with step_run(config, "train") as active:
        table = config.dataset.table
        features, version = read_pinned(spark, table, config.table_path(table))
        missing = [c for c in [*columns, label, key] if c not in features.columns]
        if missing:
            raise StepError(f"train: columns {missing} are not in dataset table {version.path}")
        split = hash_split(in_window(features, config.windows.train), key, config.split.validation_fraction,
                           config.seed)
        rows = model_input(split, settings, key, label, "is_validation")
        available = rows.count()
        if not available:
            raise no_rows("train", "train", config.windows.train, f"{table} v{version.version}")
        log_tables([version], "input")
        mlflow.log_params({"trainer": settings.trainer, "seed": config.seed,
                           "train_window": describe(config.windows.train),
                           "validation_fraction": config.split.validation_fraction, "rows_available": available})
        registered_name = None if replay_of() else settings.registered_name
        info, metrics = TRAINERS[settings.trainer](spark, rows, available, config, registered_name)
        if replay_of():  # a replay logs its model to compare it, and leaves the registry alone
            return StepResult("train", rows_in=available, rows_out=1,
                              details={"replay_of": replay_of(), "val_auc": round(metrics["val_auc"], 4)})
        client = mlflow.MlflowClient()
        model_version = str(info.registered_model_version)
        client.set_model_version_tag(settings.registered_name, model_version, DECISION_THRESHOLD_TAG, "0.5")
        client.set_model_version_tag(settings.registered_name, model_version, "train_run_id", active.info.run_id)
        challenger = config.evaluation.gate.challenger_alias  # the evaluate step's gate may promote it
        client.set_registered_model_alias(settings.registered_name, challenger, model_version)
    return StepResult(
        "train", rows_in=available, rows_out=1,
        details={"model": f"{settings.registered_name} v{model_version} @{challenger}",
                 "val_auc": round(metrics["val_auc"], 4), "input": f"{version.name} v{version.version}"},
    )
