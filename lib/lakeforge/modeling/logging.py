"""Logging a `TabularModel` so that it loads where only its logged requirements are installed.

The pyfunc module and the preprocessing helpers are pickled by value (cloudpickle), not by a
reference to the `lakeforge` package, and the requirements name only what the model needs.
"""
from __future__ import annotations

from importlib.metadata import version

import cloudpickle
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from lakeforge.features import transform
from lakeforge.modeling import portable
from lakeforge.modeling.portable import TabularModel

__all__ = ["MODEL_REQUIREMENTS", "log_tabular_model"]

MODEL_REQUIREMENTS = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"]

for _module in (portable, transform):
    cloudpickle.register_pickle_by_value(_module)


def requirements() -> list[str]:
    """The model's pip requirements, pinned to the versions it was trained with."""
    return [f"{name}=={version(name)}" for name in MODEL_REQUIREMENTS]


def log_tabular_model(model: TabularModel, sample: pd.DataFrame, registered_name: str | None,
                      name: str = "model") -> ModelInfo:
    """Log `model` (signature from `sample`'s inputs and the model's outputs on it); register it if named."""
    return mlflow.pyfunc.log_model(
        name=name, python_model=model, registered_model_name=registered_name,
        signature=infer_signature(sample, model.predict(None, sample)), input_example=sample.head(3),
        pip_requirements=requirements())
