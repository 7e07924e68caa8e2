"""Binary classification: the label is 0/1, the model gives ``score`` = P(positive), and the
decision is ``score >= threshold`` (the threshold is chosen by the evaluate step's cost matrix).

Metrics: rows, base_rate, auc (ties count one half), pr_auc (average precision), log_loss, brier,
and precision, recall, f1 and (with the objective's cost matrix) expected_cost at the threshold.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakeforge.evaluation.objectives import (choose_threshold, decision_outcome_costs, score_histogram,
                                             threshold_sweep)
from lakeforge.tasks.base import LABEL, Task, clipped

__all__ = ["BinaryClassification"]

SCORE = "score"


class BinaryClassification(Task):
    type = "binary_classification"
    label_type = "int"
    output_schema = "score double"
    drift_output_numeric = True
    drift_output = SCORE
    numeric_label = False
    default_decision = {"threshold": 0.5}

    def spark_statistics(self, scored: DataFrame, groups: list[str], threshold: float = 0.5) -> pd.DataFrame:
        y, score = F.col(LABEL).cast("double"), F.col(SCORE)
        flagged = (score >= threshold).cast("double")
        totals = scored.groupBy(*groups).agg(
            F.count("*").alias("rows"), F.sum(y).alias("positives"),
            F.sum(-(y * F.log(clipped(score)) + (1 - y) * F.log(1 - clipped(score)))).alias("log_loss_sum"),
            F.sum((score - y) ** 2).alias("brier_sum"),
            F.sum(flagged * y).alias("true_positives"), F.sum(flagged).alias("flagged"))
        by_score = scored.groupBy(*groups, SCORE).agg(F.sum(y).alias("pos"), F.sum(1 - y).alias("neg"))
        below = Window.partitionBy(*groups).orderBy(SCORE).rowsBetween(Window.unboundedPreceding, -1)
        at_or_above = Window.partitionBy(*groups).orderBy(F.desc(SCORE)).rowsBetween(Window.unboundedPreceding, 0)
        curves = (by_score
                  .withColumn("neg_below", F.coalesce(F.sum("neg").over(below), F.lit(0.0)))
                  .withColumn("tp_from", F.sum("pos").over(at_or_above))
                  .withColumn("fp_from", F.sum("neg").over(at_or_above))
                  .groupBy(*groups).agg(
                      F.sum(F.col("pos") * (F.col("neg_below") + F.col("neg") / 2)).alias("auc_sum"),
                      F.sum(F.col("pos") * F.col("tp_from") / (F.col("tp_from") + F.col("fp_from"))).alias("ap_sum")))
        joined = totals.join(curves, groups) if groups else totals.crossJoin(curves)
        return joined.toPandas()

    def frame_metrics(self, labels: pd.Series, outputs: pd.DataFrame, threshold: float = 0.5) -> dict[str, float]:
        y = np.asarray(labels, dtype="float64")
        score = outputs[SCORE].to_numpy(dtype="float64")
        p = np.clip(score, 1e-15, 1 - 1e-15)
        flagged = (score >= threshold).astype("float64")
        curve = pd.DataFrame({"score": score, "pos": y, "neg": 1 - y}).groupby("score").sum().sort_index()
        neg_below = curve["neg"].cumsum() - curve["neg"]
        tp_from, fp_from = curve["pos"][::-1].cumsum()[::-1], curve["neg"][::-1].cumsum()[::-1]
        stats = pd.Series({
            "rows": len(y), "positives": y.sum(), "log_loss_sum": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum()),
            "brier_sum": float(((score - y) ** 2).sum()), "true_positives": float((flagged * y).sum()),
            "flagged": float(flagged.sum()), "auc_sum": float((curve["pos"] * (neg_below + curve["neg"] / 2)).sum()),
            "ap_sum": float((curve["pos"] * tp_from / (tp_from + fp_from)).sum())})
        return self.finish(stats, threshold)

    def finish(self, stats: pd.Series, threshold: float = 0.5) -> dict[str, float]:
        rows = float(stats["rows"])
        if not rows:
            return {"rows": 0.0}
        positives = float(stats["positives"])
        negatives = rows - positives
        both = positives > 0 and negatives > 0
        precision = stats["true_positives"] / stats["flagged"] if stats["flagged"] else 0.0
        recall = stats["true_positives"] / positives if positives else 0.0
        metrics = {"rows": rows, "base_rate": positives / rows,
                "auc": float(stats["auc_sum"] / (positives * negatives)) if both else float("nan"),
                "pr_auc": float(stats["ap_sum"] / positives) if positives else float("nan"),
                "log_loss": float(stats["log_loss_sum"] / rows), "brier": float(stats["brier_sum"] / rows),
                "precision": float(precision), "recall": float(recall),
                "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0}
        if self.settings is not None:  # the cost matrix of evaluation.objective, at the threshold
            costs, tp, flagged = self.settings.costs, float(stats["true_positives"]), float(stats["flagged"])
            fp, fn = flagged - tp, positives - tp
            metrics["expected_cost"] = (costs.true_positive * tp + costs.false_positive * fp + costs.false_negative * fn
                                        + costs.true_negative * (rows - flagged - fn)) / rows
        return metrics

    def slice_aggregates(self, threshold: float = 0.5) -> dict[str, Column]:
        flagged, positive = F.col(SCORE) >= F.lit(threshold), F.col(LABEL) == 1
        return {"recall": F.try_divide(F.count_if(flagged & positive), F.count_if(positive)),
                "precision": F.try_divide(F.count_if(flagged & positive), F.count_if(flagged)),
                "positive_rate": F.avg(flagged.cast("double")),
                "expected_cost": F.avg(decision_outcome_costs(threshold, self.settings.costs))}

    def baseline_outputs(self, training_labels: DataFrame) -> dict[str, Column]:
        rate = training_labels.agg(F.avg(F.col(LABEL).cast("double"))).head()[0]
        return {SCORE: F.lit(float(rate))}

    def tune(self, scored: DataFrame) -> tuple[dict[str, Any], dict[str, float], tuple[str, ...], pd.DataFrame]:
        """The cost-optimal threshold under the constraints (`evaluation.objective`), found on a score
        histogram; the sweep of every threshold is the curve."""
        objective = self.settings
        sweep = threshold_sweep(score_histogram(scored, objective.score_buckets), objective.score_buckets,
                                objective.costs)
        choice = choose_threshold(sweep, objective)
        return ({"threshold": choice.threshold}, choice.metrics | {"threshold": choice.threshold}, choice.violations,
                sweep)

    def with_decision(self, predictions: DataFrame, threshold: float = 0.5) -> DataFrame:
        return predictions.withColumns({"decision": (F.col(SCORE) >= threshold).cast("int"),
                                        "decision_threshold": F.lit(float(threshold))})
