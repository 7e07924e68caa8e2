"""Logged or registered models of either trainer behind one method: `scores(df, key)` -> DataFrame[key, score].

`load_model` reads the model's MLflow flavour: `sklearn` models score in Arrow batches on the executors
(`predict_scores`), `spark` models (trainer `spark_ml`) with `PipelineModel.transform`. Both take the
same `train.model_input` columns and return the key as a string and the positive-class probability.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.pipeline import Pipeline

from lakeforge import spark_ml
from lakeforge.config import ModelSettings
from lakeforge.train import feature_columns, model_input


def predict_scores(df: DataFrame, model: object, key: str, settings: ModelSettings) -> DataFrame:
    """Positive-class probability per row of a scikit-learn model, computed on the executors in Arrow batches."""
    broadcast = df.sparkSession.sparkContext.broadcast(model)
    columns = feature_columns(settings)

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fitted = broadcast.value
        for batch in batches:
            yield pd.DataFrame({key: batch[key], "score": fitted.predict_proba(batch[columns])[:, 1]})

    return model_input(df, settings, key).mapInPandas(predict, f"{key} string, score double")


class ScoringModel(Protocol):
    def scores(self, df: DataFrame, key: str) -> DataFrame:
        """Columns `key` (string) and `score` (positive-class probability) for every row of `df`."""


@dataclass(frozen=True)
class SklearnModel:
    model: Pipeline
    settings: ModelSettings

    def scores(self, df: DataFrame, key: str) -> DataFrame:
        return predict_scores(df, self.model, key, self.settings)


@dataclass(frozen=True)
class SparkMlModel:
    model: PipelineModel
    settings: ModelSettings

    def scores(self, df: DataFrame, key: str) -> DataFrame:
        scored = spark_ml.with_scores(model_input(df, self.settings, key), self.model)
        return scored.select(F.col(key).cast("string").alias(key), spark_ml.SCORE)


def load_model(model_uri: str, settings: ModelSettings) -> ScoringModel:
    """The model at `model_uri` (``runs:/...`` or ``models:/...``), whichever trainer logged it."""
    if "spark" in mlflow.models.get_model_info(model_uri).flavors:
        return SparkMlModel(mlflow.spark.load_model(model_uri), settings)
    return SklearnModel(mlflow.sklearn.load_model(model_uri), settings)


def load_registered(version: ModelVersion, settings: ModelSettings) -> ScoringModel:
    """A registered model version (e.g. from `get_model_version_by_alias`)."""
    return load_model(f"models:/{version.name}/{version.version}", settings)
