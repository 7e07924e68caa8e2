"""Regression: the label is a number and the model gives ``prediction``.

Metrics: rows, rmse, mae, r2, mape (over the rows whose label is not 0; `mape_excluded_rows` counts
the others), mean_prediction, and expected_cost when `evaluation.objective.unit_costs` prices each
unit of under- and over-prediction.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeforge.tasks.base import LABEL, Task

__all__ = ["Regression"]

PREDICTION = "prediction"


class Regression(Task):
    type = "regression"
    label_type = "double"
    output_schema = "prediction double"
    drift_output_numeric = True
    drift_output = PREDICTION
    numeric_label = True

    def unit_costs(self) -> Any:
        return getattr(self.settings, "unit_costs", None) if self.settings is not None else None

    def _cost(self, error: Column) -> Column:
        """Cost of one row's error (prediction - label) under the unit costs."""
        costs = self.unit_costs()
        return F.greatest(-error, F.lit(0.0)) * costs.under + F.greatest(error, F.lit(0.0)) * costs.over

    def spark_statistics(self, scored: DataFrame, groups: list[str], **_: Any) -> pd.DataFrame:
        y, error = F.col(LABEL).cast("double"), F.col(PREDICTION) - F.col(LABEL).cast("double")
        sums = [F.count("*").alias("rows"), F.sum(error ** 2).alias("sse"), F.sum(F.abs(error)).alias("sae"),
                F.sum(y).alias("sum_y"), F.sum(y ** 2).alias("sum_y2"), F.sum(PREDICTION).alias("sum_prediction"),
                F.sum(F.when(y != 0, F.abs(error / y))).alias("ape_sum"), F.count_if(y == 0).alias("zero_labels")]
        if self.unit_costs():
            sums.append(F.sum(self._cost(error)).alias("cost_sum"))
        return scored.groupBy(*groups).agg(*sums).toPandas()

    def frame_metrics(self, labels: pd.Series, outputs: pd.DataFrame, **_: Any) -> dict[str, float]:
        y = np.asarray(labels, dtype="float64")
        error = outputs[PREDICTION].to_numpy(dtype="float64") - y
        nonzero = y != 0
        stats = {"rows": len(y), "sse": float((error ** 2).sum()), "sae": float(np.abs(error).sum()),
                 "sum_y": float(y.sum()), "sum_y2": float((y ** 2).sum()), "sum_prediction": float((error + y).sum()),
                 "ape_sum": float(np.abs(error[nonzero] / y[nonzero]).sum()), "zero_labels": int((~nonzero).sum())}
        costs = self.unit_costs()
        if costs:
            stats["cost_sum"] = float((np.maximum(-error, 0) * costs.under + np.maximum(error, 0) * costs.over).sum())
        return self.finish(pd.Series(stats))

    def finish(self, stats: pd.Series, **_: Any) -> dict[str, float]:
        rows = float(stats["rows"])
        if not rows:
            return {"rows": 0.0}
        total_variance = stats["sum_y2"] - stats["sum_y"] ** 2 / rows
        counted = rows - stats["zero_labels"]
        metrics = {"rows": rows, "rmse": float(np.sqrt(stats["sse"] / rows)), "mae": float(stats["sae"] / rows),
                   "r2": float(1 - stats["sse"] / total_variance) if total_variance > 0 else float("nan"),
                   "mape": float(stats["ape_sum"] / counted) if counted else float("nan"),
                   "mape_excluded_rows": float(stats["zero_labels"]),
                   "mean_prediction": float(stats["sum_prediction"] / rows)}
        if "cost_sum" in stats and not pd.isna(stats.get("cost_sum")):
            metrics["expected_cost"] = float(stats["cost_sum"] / rows)
        return metrics

    def baseline_outputs(self, training_labels: DataFrame) -> dict[str, Column]:
        return {PREDICTION: F.lit(float(training_labels.agg(F.avg(LABEL)).head()[0]))}

    def slice_aggregates(self, **_: Any) -> dict[str, Column]:
        error = F.col(PREDICTION) - F.col(LABEL).cast("double")
        aggregates = {"rmse": F.sqrt(F.avg(error ** 2)), "mae": F.avg(F.abs(error))}
        if self.unit_costs():
            aggregates["expected_cost"] = F.avg(self._cost(error))
        return aggregates
