"""What each task type offers, without importing Spark (config validation reads it): default
estimator, metrics with their direction, default primary and slice metrics.
"""
from __future__ import annotations

__all__ = ["DEFAULT_ESTIMATOR", "DEFAULT_PRIMARY_METRIC", "DEFAULT_SLICE_METRIC", "DIRECTIONS", "HEADLINE_METRIC", "TASK_TYPES",
           "greater_is_better"]

TASK_TYPES = ("binary_classification", "multiclass_classification", "regression")
DEFAULT_ESTIMATOR = {"binary_classification": "sklearn.ensemble.HistGradientBoostingClassifier",
                     "multiclass_classification": "sklearn.ensemble.HistGradientBoostingClassifier",
                     "regression": "sklearn.ensemble.HistGradientBoostingRegressor"}
DEFAULT_PRIMARY_METRIC = {"binary_classification": "expected_cost", "multiclass_classification": "log_loss",
                          "regression": "rmse"}
DEFAULT_SLICE_METRIC = {"binary_classification": "recall", "multiclass_classification": "accuracy",
                        "regression": "rmse"}
HEADLINE_METRIC = {"binary_classification": "auc", "multiclass_classification": "log_loss", "regression": "rmse"}
# metric -> greater is better; a name ending in "_" stands for every metric it prefixes (recall_<class>)
DIRECTIONS = {
    "binary_classification": {"expected_cost": False, "auc": True, "pr_auc": True, "log_loss": False, "brier": False,
                              "precision": True, "recall": True, "f1": True, "positive_rate": False},
    "multiclass_classification": {"expected_cost": False, "log_loss": False, "accuracy": True, "macro_f1": True,
                                  "recall_": True},
    "regression": {"expected_cost": False, "rmse": False, "mae": False, "r2": True, "mape": False},
}


def greater_is_better(task_type: str, metric: str) -> bool:
    """The direction of `metric` for `task_type`; ValueError naming the choices if it is not one of its metrics."""
    for name, greater in DIRECTIONS[task_type].items():
        if metric == name or (name.endswith("_") and metric.startswith(name) and len(metric) > len(name)):
            return greater
    choices = ", ".join(n + "<class>" if n.endswith("_") else n for n in DIRECTIONS[task_type])
    raise ValueError(f"'{metric}' is not a {task_type} metric ({choices})")
