"""Logged or registered models of either kind behind one method: `predict(df, key)` -> DataFrame with
`key` (as text) and the task's output columns (`lakeforge.tasks`).

`load_model` reads the model's MLflow flavour: a scikit-learn pyfunc (`modeling.portable.TabularModel`)
predicts in Arrow batches on the executors, a Spark ML model (`spark`) with `PipelineModel.transform`.
Both take the same `train.model_input` columns.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import cloudpickle
import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge import spark_ml
from lakeforge.config import ModelSettings
from lakeforge.modeling.portable import TabularModel
from lakeforge.tasks import task_for
from lakeforge.tasks.base import Task
from lakeforge.train import model_input

__all__ = ["ScoringModel", "SklearnModel", "SparkMlModel", "load_model", "load_registered", "predict_outputs"]


def predict_outputs(df: DataFrame, model: TabularModel, key: str, settings: ModelSettings, task: Task) -> DataFrame:
    """The pyfunc's outputs per row of a scikit-learn model, computed on the executors in Arrow batches.

    The model travels cloudpickled, as it was logged (its module is pickled by value)."""
    broadcast = df.sparkSession.sparkContext.broadcast(cloudpickle.dumps(model))

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fitted = pickle.loads(broadcast.value)
        for batch in batches:
            outputs = fitted.predict(None, batch)
            yield pd.concat([batch[[key]].reset_index(drop=True), outputs], axis=1)

    return model_input(df, settings, key).mapInPandas(predict, f"{key} string, {task.output_schema}")


class ScoringModel(Protocol):
    def predict(self, df: DataFrame, key: str) -> DataFrame:
        """Column `key` (string) and the task's output columns for every row of `df`."""


@dataclass(frozen=True)
class SklearnModel:
    model: TabularModel
    settings: ModelSettings
    task: Task

    def predict(self, df: DataFrame, key: str) -> DataFrame:
        return predict_outputs(df, self.model, key, self.settings, self.task)


@dataclass(frozen=True)
class SparkMlModel:
    model: PipelineModel
    settings: ModelSettings
    task: Task

    def predict(self, df: DataFrame, key: str) -> DataFrame:
        scored = spark_ml.with_outputs(model_input(df, self.settings, key), self.model, self.task)
        return scored.select(F.col(key).cast("string").alias(key), *self.task.output_columns())


def load_model(model_uri: str, settings: ModelSettings, task_type: str) -> ScoringModel:
    """The model at `model_uri` (``runs:/...`` or ``models:/...``), whichever kind was logged."""
    task = task_for(task_type)
    if "spark" in mlflow.models.get_model_info(model_uri).flavors:
        return SparkMlModel(mlflow.spark.load_model(model_uri), settings, task)
    return SklearnModel(mlflow.pyfunc.load_model(model_uri).unwrap_python_model(), settings, task)


def load_registered(version: ModelVersion, settings: ModelSettings, task_type: str) -> ScoringModel:
    """A registered model version (e.g. from `get_model_version_by_alias`)."""
    return load_model(f"models:/{version.name}/{version.version}", settings, task_type)
