"""Multiclass classification: the label is a class name (text), the model gives ``probabilities``
(class -> probability) and ``prediction``: the most probable class, or with
`evaluation.objective.class_costs` (true class -> predicted class -> cost) the class of lowest
expected cost.

Metrics: rows, accuracy, macro_f1 (over the classes seen as labels or predictions), recall_<class>
per class, log_loss, and expected_cost when class costs are set.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeforge.tasks.base import CLIP, LABEL, Task, clipped

__all__ = ["MulticlassClassification"]

PREDICTION, PROBABILITIES = "prediction", "probabilities"


def _cost(truth: str, chosen: str, class_costs: dict[str, dict[str, float]] | None) -> float:
    if not class_costs:
        return 0.0 if truth == chosen else 1.0
    return class_costs.get(truth, {}).get(chosen, 0.0 if truth == chosen else 1.0)


class MulticlassClassification(Task):
    type = "multiclass_classification"
    label_type = "string"
    output_schema = "prediction string, probabilities map<string, double>"
    drift_output_numeric = False
    drift_output = PREDICTION
    numeric_label = False

    def class_costs(self) -> dict[str, dict[str, float]] | None:
        return getattr(self.settings, "class_costs", None) if self.settings is not None else None

    def spark_statistics(self, scored: DataFrame, groups: list[str], **_: Any) -> pd.DataFrame:
        true_probability = F.coalesce(F.try_element_at(PROBABILITIES, F.col(LABEL)), F.lit(0.0))
        losses = scored.groupBy(*groups).agg(F.sum(-F.log(clipped(true_probability))).alias("log_loss_sum"))
        confusion = scored.groupBy(*groups, LABEL, PREDICTION).agg(F.count("*").alias("n")).toPandas()
        losses = losses.toPandas()
        if not groups:
            return pd.DataFrame([{"log_loss_sum": losses["log_loss_sum"].iloc[0], "confusion": confusion}])
        return pd.DataFrame([{**{g: row[g] for g in groups}, "log_loss_sum": row["log_loss_sum"],
                              "confusion": confusion[(confusion[groups] == row[groups]).all(axis=1)]}
                             for _, row in losses.iterrows()])

    def frame_metrics(self, labels: pd.Series, outputs: pd.DataFrame, **_: Any) -> dict[str, float]:
        truth = labels.astype(str).to_numpy()
        true_probability = np.array([p.get(t, 0.0) for p, t in zip(outputs[PROBABILITIES], truth)])
        confusion = (pd.DataFrame({LABEL: truth, PREDICTION: outputs[PREDICTION].to_numpy()})
                     .groupby([LABEL, PREDICTION]).size().rename("n").reset_index())
        return self.finish(pd.Series({"log_loss_sum": float(-np.log(np.clip(true_probability, CLIP, 1 - CLIP)).sum()),
                                      "confusion": confusion}))

    def finish(self, stats: pd.Series, **_: Any) -> dict[str, float]:
        confusion: pd.DataFrame = stats["confusion"]
        rows = float(confusion["n"].sum())
        if not rows:
            return {"rows": 0.0}
        hits = confusion[confusion[LABEL] == confusion[PREDICTION]].groupby(LABEL)["n"].sum()
        by_truth, by_prediction = confusion.groupby(LABEL)["n"].sum(), confusion.groupby(PREDICTION)["n"].sum()
        classes = sorted(set(by_truth.index) | set(by_prediction.index))
        recall = {c: hits.get(c, 0) / by_truth[c] for c in classes if by_truth.get(c, 0)}
        f1 = []
        for c in classes:
            tp, predicted, actual = hits.get(c, 0), by_prediction.get(c, 0), by_truth.get(c, 0)
            f1.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
        metrics = {"rows": rows, "accuracy": float(hits.sum() / rows), "macro_f1": float(np.mean(f1)),
                   "log_loss": float(stats["log_loss_sum"] / rows)}
        metrics |= {f"recall_{c}": float(r) for c, r in sorted(recall.items())}
        costs = self.class_costs()
        if costs:
            total = sum(n * _cost(t, p, costs) for t, p, n in confusion[[LABEL, PREDICTION, "n"]].itertuples(index=False))
            metrics["expected_cost"] = float(total / rows)
        return metrics

    def baseline_outputs(self, training_labels: DataFrame) -> dict[str, Column]:
        counts = {row[LABEL]: row["n"] for row in training_labels.groupBy(LABEL).agg(F.count("*").alias("n")).collect()}
        total = sum(counts.values())
        shares = F.create_map(*[F.lit(x) for c, n in sorted(counts.items()) for x in (c, n / total)])
        return {PREDICTION: F.lit(max(sorted(counts), key=counts.get)), PROBABILITIES: shares}

    def slice_aggregates(self, **_: Any) -> dict[str, Column]:
        aggregates = {"accuracy": F.avg((F.col(LABEL) == F.col(PREDICTION)).cast("double"))}
        costs = self.class_costs()
        if costs:
            pairs = [F.lit(x) for truth, row in costs.items() for chosen, cost in row.items()
                     for x in (f"{truth}\u0000{chosen}", float(cost))]
            listed = F.try_element_at(F.create_map(*pairs), F.concat_ws("\u0000", LABEL, PREDICTION))
            default = F.when(F.col(LABEL) == F.col(PREDICTION), 0.0).otherwise(1.0)
            aggregates["expected_cost"] = F.avg(F.coalesce(listed, default))
        return aggregates
