"""What a task type decides: the label's type, the model's output columns, its metrics (with their
direction) and its decision. Steps ask the task (`lakeforge.tasks.task_for`), never the task type.

Metrics are computed from small sufficient statistics (counts and sums per group), gathered either
by Spark aggregations over scored rows (`spark_metrics`, `window_metrics`: evaluation, scoring,
monitoring) or from in-memory arrays (`frame_metrics`: training and search trials), and finished
by the same code, so every step reports the same numbers for the same rows.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeforge.tasks import catalog

__all__ = ["LABEL", "Task"]

LABEL = "label"
CLIP = 1e-15


def clipped(column: Column) -> Column:
    """A probability kept inside [1e-15, 1 - 1e-15], so that log loss stays finite."""
    return F.least(F.greatest(column, F.lit(CLIP)), F.lit(1 - CLIP))


class Task(ABC):
    """One task type. Subclasses set the class attributes and implement the statistics."""

    type: ClassVar[str]
    label_type: ClassVar[str]             # Spark type of the stored label
    output_schema: ClassVar[str]          # Spark DDL of the model's output columns
    drift_output: ClassVar[str]           # the output column whose drift the monitor measures
    drift_output_numeric: ClassVar[bool]  # ... binned as numbers, else as categories
    numeric_label: ClassVar[bool]         # label (and drift output) binned as numbers, else as categories
    default_decision: ClassVar[dict[str, float]] = {}  # the decision's settings before evaluation tunes them

    def __init__(self, settings: Any = None):
        """`settings`: the evaluation objective (costs, threshold resolution) the task's decision uses."""
        self.settings = settings

    def label(self, expression: str) -> Column:
        """The label as stored in the dataset table."""
        return F.expr(expression).cast(self.label_type)

    @property
    def default_primary_metric(self) -> str:
        return catalog.DEFAULT_PRIMARY_METRIC[self.type]

    def greater_is_better(self, metric: str) -> bool:
        """The direction of `metric` (validated with the config)."""
        return catalog.greater_is_better(self.type, metric)

    def output_columns(self) -> list[str]:
        """The names in `output_schema` (commas inside ``map<...>`` do not separate fields)."""
        return [field.split()[0] for field in re.split(r",\s*(?![^<]*>)", self.output_schema)]

    def spark_metrics(self, scored: DataFrame, **decision: Any) -> dict[str, float]:
        """The task's metrics over all `scored` rows (columns `label` and the model's outputs); ``{"rows": 0.0}``
        when there are none (e.g. rows scored before their labels are known)."""
        return (self.window_metrics(scored, None, **decision) or [{"rows": 0.0}])[0]

    def window_metrics(self, scored: DataFrame, group: str | None, **decision: Any) -> list[dict[str, Any]]:
        """The metrics per value of `group` (None: one row for all rows), each dict with the group's value."""
        groups = [group] if group else []
        stats = self.spark_statistics(scored, groups, **decision)
        rows = []
        for _, row in stats.iterrows():
            metrics = self.finish(row, **decision)
            rows.append(({group: row[group]} if group else {}) | metrics)
        return sorted(rows, key=lambda r: r.get(group, "")) if group else rows

    @abstractmethod
    def spark_statistics(self, scored: DataFrame, groups: list[str], **decision: Any) -> pd.DataFrame:
        """Sufficient statistics per group, computed by Spark (one row per group)."""

    @abstractmethod
    def frame_metrics(self, labels: pd.Series, outputs: pd.DataFrame, **decision: Any) -> dict[str, float]:
        """The metrics of in-memory labels and model outputs (same numbers as `spark_metrics`)."""

    @abstractmethod
    def finish(self, stats: pd.Series, **decision: Any) -> dict[str, float]:
        """Metrics from one group's sufficient statistics."""

    @abstractmethod
    def slice_aggregates(self, **decision: Any) -> dict[str, Column]:
        """Metric -> Spark aggregate over scored rows, for per-slice tables."""

    def tune(self, scored: DataFrame) -> tuple[dict[str, Any], dict[str, float], tuple[str, ...], pd.DataFrame | None]:
        """The decision's settings chosen on evaluation rows (binary: the threshold), the metrics of
        that choice, the constraints it violates and the curve it was chosen on. Tasks without a
        tunable decision: nothing."""
        return {}, {}, (), None

    @abstractmethod
    def baseline_outputs(self, training_labels: DataFrame) -> dict[str, Column]:
        """The outputs of the naive model fitted on the training labels (training positive rate,
        class shares and majority class, mean), as literal columns."""

    def with_decision(self, predictions: DataFrame, **decision: Any) -> DataFrame:
        """The predictions table's rows: the model's outputs plus the decision columns (binary only)."""
        return predictions
