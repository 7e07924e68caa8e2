"""`model.estimator`: any scikit-learn compatible class, or a pyspark.ml one, by dotted path.

The class is checked against the task (`is_classifier` / `is_regressor`, or the pyspark.ml module
it comes from) and `model.params` and `model.search.grid` against its parameters (`get_params()`,
or the pyspark.ml class's `Param`s), so a typo is a config error naming the key, before any job.

>>> estimator_problems("regression", "sklearn.linear_model.Ridge", {"alpha": 1.0, "alpah": 2}, {})
{'model.params': "['alpah'] are not Ridge parameters (alpha, copy_X, fit_intercept, max_iter, positive, random_state, solver, tol)"}
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SPARK_ML_KINDS", "estimator_class", "estimator_problems", "is_spark_ml", "sklearn_estimator"]

SPARK_ML_KINDS = {"pyspark.ml.classification": ("binary_classification", "multiclass_classification"),
                  "pyspark.ml.regression": ("regression",)}
_SET_BY_LAKEFORGE = {"categorical_features", "random_state"}


def estimator_class(dotted: str) -> type:
    """The class at `dotted` (``package.module.Class``)."""
    module, _, name = dotted.rpartition(".")
    if not module:
        raise ImportError(f"'{dotted}' is not a dotted path (package.module.Class)")
    return getattr(importlib.import_module(module), name)


def is_spark_ml(cls: type) -> bool:
    return cls.__module__.startswith("pyspark.ml")


def _spark_ml_parameters(cls: type) -> set[str]:
    from pyspark.ml.param import Param

    return {name for name in dir(cls) if isinstance(getattr(cls, name, None), Param)}


def _fits(cls: type, task_type: str) -> bool:
    if is_spark_ml(cls):
        return any(cls.__module__ == module and task_type in tasks for module, tasks in SPARK_ML_KINDS.items())
    from sklearn.base import is_classifier, is_regressor

    instance = cls()
    return is_regressor(instance) if task_type == "regression" else is_classifier(instance)


def estimator_problems(task_type: str, dotted: str, params: dict[str, Any],
                       grid: dict[str, list[Any]]) -> dict[str, str]:
    """Problems by YAML key (`model.estimator`, `model.params`, `model.search.grid`); empty when all is well."""
    try:
        cls = estimator_class(dotted)
        fits = _fits(cls, task_type)
        known = _spark_ml_parameters(cls) if is_spark_ml(cls) else set(cls().get_params()) - _SET_BY_LAKEFORGE
    except Exception as error:  # an import error, or a class that cannot be built without arguments
        return {"model.estimator": f"cannot use '{dotted}': {type(error).__name__}: {error}"}
    if not fits:
        wanted = "a regressor" if task_type == "regression" else "a classifier"
        return {"model.estimator": f"{cls.__name__} is not {wanted}, which task.type {task_type} needs"}
    problems = {}
    for key, names in (("model.params", params), ("model.search.grid", grid)):
        unknown = sorted(set(names) - known)
        if unknown:
            problems[key] = f"{unknown} are not {cls.__name__} parameters ({', '.join(sorted(known))})"
    if grid and is_spark_ml(cls):
        problems["model.search"] = "hyperparameter search needs a scikit-learn estimator"
    if not problems and not is_spark_ml(cls):
        problems.update(_value_problems(cls, params, grid))
    return problems


def _value_problems(cls: type, params: dict[str, Any], grid: dict[str, list[Any]]) -> dict[str, str]:
    """Parameter values the scikit-learn class refuses (its ``_parameter_constraints``), by YAML key."""
    def refused(values: dict[str, Any]) -> str | None:
        try:
            estimator = cls(**values)
            if hasattr(estimator, "_validate_params"):
                estimator._validate_params()
        except (TypeError, ValueError) as error:
            return str(error)
        return None

    problems = {}
    if (problem := refused(params)) is not None:
        problems["model.params"] = problem
    for name, values in grid.items():
        for value in values:
            if (problem := refused({**params, name: value})) is not None:
                problems[f"model.search.grid.{name}"] = problem
                break
    return problems


def sklearn_estimator(dotted: str, params: dict[str, Any], seed: int, categorical: list[int] | None) -> Any:
    """The estimator with `params`; `random_state` from the seed and, for estimators that take it,
    `categorical_features` (the ordinal-coded columns) unless `params` set them."""
    cls = estimator_class(dotted)
    settable = cls().get_params()
    extra = {}
    if "random_state" in settable:
        extra["random_state"] = seed
    if "categorical_features" in settable and categorical:
        extra["categorical_features"] = categorical
    return cls(**(extra | params))
