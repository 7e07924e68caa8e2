"""Train a scikit-learn classifier on the pinned feature table and register it in MLflow."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline

from lakeforge.config import LakeforgeConfig, ModelSettings
from lakeforge.errors import StepError
from lakeforge.features.transform import build_preprocessor, categorical_positions
from lakeforge.results import StepResult
from lakeforge.split import hash_split
from lakeforge.tables import read_pinned
from lakeforge.tracking import log_tables, replay_of, step_run

DECISION_THRESHOLD_TAG = "decision_threshold"


def build_model(settings: ModelSettings, seed: int) -> Pipeline:
    """The configured preprocessing (fitted with the model, saved in it) and a histogram gradient boosting model."""
    classifier = HistGradientBoostingClassifier(
        categorical_features=categorical_positions(settings), random_state=seed, **settings.params
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


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Fit on the training months, validate on a hash split, log and register the model."""
    settings, label, key = config.model, config.target.name, config.split.key
    columns = feature_columns(settings)
    with step_run(config, "train") as active:
        features, version = read_pinned(spark, config.features.table, config.table_path(config.features.table))
        missing = [c for c in [*columns, label, key] if c not in features.columns]
        if missing:
            raise StepError(f"train: columns {missing} are not in feature table {version.path}")
        in_months = features.where(F.col("month").isin(settings.train_months))
        split = hash_split(in_months, key, config.split.validation_fraction, config.seed)
        frame = to_training_frame(model_input(split, settings, key, label, "is_validation"), key)
        if frame.empty:
            raise StepError(f"train: no rows for months {settings.train_months} in {version.path} v{version.version}")
        fit_rows, val_rows = frame[~frame["is_validation"]], frame[frame["is_validation"]]
        model = build_model(settings, config.seed).fit(fit_rows[columns], fit_rows[label])
        metrics = {f"train_{k}": v for k, v in
                   classification_metrics(fit_rows[label].to_numpy(), model.predict_proba(fit_rows[columns])[:, 1]).items()}
        metrics |= {f"val_{k}": v for k, v in
                    classification_metrics(val_rows[label].to_numpy(), model.predict_proba(val_rows[columns])[:, 1]).items()}
        log_tables([version], "input")
        mlflow.log_params({"model": "HistGradientBoostingClassifier", "seed": config.seed,
                           "train_months": settings.train_months, "validation_fraction": config.split.validation_fraction,
                           "rows_fit": len(fit_rows), "rows_validation": len(val_rows), **settings.params})
        mlflow.log_metrics(metrics)
        sample = fit_rows[columns].head(50)
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle",
            signature=infer_signature(sample, model.predict_proba(sample)),
            registered_model_name=None if replay_of() else settings.registered_name,
        )
        if replay_of():  # a replay logs its model to compare it, and leaves the registry alone
            return StepResult("train", rows_in=len(frame), rows_out=1,
                              details={"replay_of": replay_of(), "val_auc": round(metrics["val_auc"], 4)})
        client = mlflow.MlflowClient()
        model_version = str(info.registered_model_version)
        client.set_model_version_tag(settings.registered_name, model_version, DECISION_THRESHOLD_TAG, "0.5")
        client.set_model_version_tag(settings.registered_name, model_version, "train_run_id", active.info.run_id)
        challenger = config.evaluation.gate.challenger_alias  # the evaluate step's gate may promote it
        client.set_registered_model_alias(settings.registered_name, challenger, model_version)
    return StepResult(
        "train", rows_in=len(frame), rows_out=1,
        details={"model": f"{settings.registered_name} v{model_version} @{challenger}",
                 "val_auc": round(metrics["val_auc"], 4), "input": f"{version.name} v{version.version}"},
    )
