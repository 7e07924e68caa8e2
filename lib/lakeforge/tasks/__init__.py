"""Task types: binary classification, multiclass classification, regression (see `base.Task`).

Importing this package loads no Spark code (`catalog` is what config validation needs); `task_for`
loads the task's module.

>>> task = task_for("regression")
>>> task.output_columns(), task.default_primary_metric
(['prediction'], 'rmse')
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lakeforge.tasks.catalog import TASK_TYPES

if TYPE_CHECKING:
    from lakeforge.tasks.base import Task

__all__ = ["TASK_TYPES", "task_for"]

_CLASSES = {"binary_classification": ("binary", "BinaryClassification"),
            "multiclass_classification": ("multiclass", "MulticlassClassification"),
            "regression": ("regression", "Regression")}


def task_for(task_type: str, objective: Any = None) -> "Task":
    """The task of `task.type`; `objective` (evaluation.objective) carries its costs."""
    module, name = _CLASSES[task_type]
    return getattr(importlib.import_module(f"lakeforge.tasks.{module}"), name)(objective)
