"""Registered models' pyfuncs: the fitted scikit-learn pipeline and what it returns for each task, and
the two-stage cascade.

This module imports only numpy, pandas and mlflow and is pickled *by value* with the model (see
`lakeforge.modeling.estimator.log_sklearn_model`), so a registered model loads and predicts where
lakeforge and pyspark are not installed. Its outputs are the predictions table's columns:

- binary_classification: ``score`` = P(positive);
- multiclass_classification: ``prediction`` (the class with the lowest expected cost under
  `class_costs`, else the most probable) and ``probabilities`` (class -> probability);
- regression: ``prediction``.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

__all__ = ["CascadeModel", "OUTPUT_COLUMNS", "TabularModel", "decide_classes"]

OUTPUT_COLUMNS = {"binary_classification": ["score"], "multiclass_classification": ["prediction", "probabilities"],
                  "regression": ["prediction"]}


def decide_classes(probabilities: np.ndarray, classes: list[str],
                   class_costs: dict[str, dict[str, float]] | None) -> np.ndarray:
    """Per row, the most probable class, or with `class_costs` (true class -> predicted class -> cost,
    missing pairs cost 0 on the diagonal and 1 elsewhere) the class of lowest expected cost."""
    if not class_costs:
        return np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    costs = np.array([[class_costs.get(truth, {}).get(chosen, 0.0 if truth == chosen else 1.0)
                       for chosen in classes] for truth in classes])
    return np.asarray(classes, dtype=object)[(probabilities @ costs).argmin(axis=1)]


class TabularModel(mlflow.pyfunc.PythonModel):
    """A fitted scikit-learn pipeline over `columns` whose `predict` returns the task's output columns."""

    def __init__(self, pipeline, task_type: str, columns: list[str],
                 class_costs: dict[str, dict[str, float]] | None = None):
        self.pipeline, self.task_type, self.columns, self.class_costs = pipeline, task_type, columns, class_costs

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        features = model_input[self.columns]
        if self.task_type == "regression":
            return pd.DataFrame({"prediction": np.asarray(self.pipeline.predict(features), dtype="float64")})
        probabilities = self.pipeline.predict_proba(features)
        if self.task_type == "binary_classification":
            positive = self.classes.index("1")
            return pd.DataFrame({"score": probabilities[:, positive]})
        classes = self.classes
        return pd.DataFrame({"prediction": decide_classes(probabilities, classes, self.class_costs),
                             "probabilities": [dict(zip(classes, row)) for row in probabilities.tolist()]})


class CascadeModel(mlflow.pyfunc.PythonModel):
    """Outcome 0 when stage A's score is below `threshold_a`, else 2 if stage B's score reaches `threshold_b`, else 1."""

    def __init__(self, stage_a, stage_b, columns: list[str], threshold_a: float, threshold_b: float):
        self.stage_a, self.stage_b, self.columns = stage_a, stage_b, columns
        self.threshold_a, self.threshold_b = threshold_a, threshold_b

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        features = model_input[self.columns]
        stage_a_score = self.stage_a.predict_proba(features)[:, 1]
        flagged = stage_a_score >= self.threshold_a
        stage_b_score = np.full(len(features), np.nan)
        if flagged.any():
            stage_b_score[flagged] = self.stage_b.predict_proba(features[flagged])[:, 1]
        outcome = np.where(~flagged, 0, np.where(stage_b_score >= self.threshold_b, 2, 1))
        return pd.DataFrame({"stage_a_score": stage_a_score, "stage_b_score": stage_b_score,
                             "outcome": outcome.astype("int32")})
