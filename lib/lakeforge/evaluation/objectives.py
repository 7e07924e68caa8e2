"""Expected cost from a cost matrix, and the decision threshold that minimises it under constraints.

The full evaluation data stays in Spark: scores are bucketed to ``1/buckets`` and counted per
(bucket, label) on the executors; the threshold sweep runs on that small histogram (at most
``2 * (buckets + 1)`` rows) on the driver.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeforge.config import CostMatrix, ObjectiveSettings

SWEEP_COLUMNS = ["threshold", "tp", "fp", "fn", "tn", "recall", "precision", "positive_rate", "expected_cost"]


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold with its confusion counts, or `violations` when no threshold is feasible."""

    threshold: float
    metrics: dict[str, float]
    violations: tuple[str, ...] = ()

    @property
    def feasible(self) -> bool:
        return not self.violations


def score_histogram(scored: DataFrame, buckets: int, score: str = "score", label: str = "label") -> pd.DataFrame:
    """Rows per score bucket ``floor(score * buckets)`` and label, counted in Spark: columns bucket, positives, negatives."""
    bucket = F.least(F.greatest(F.floor(F.col(score) * buckets), F.lit(0)), F.lit(buckets)).cast("int")
    counts = scored.groupBy(bucket.alias("bucket")).agg(
        F.sum(F.col(label).cast("long")).alias("positives"),
        F.sum((1 - F.col(label)).cast("long")).alias("negatives"),
    ).toPandas()
    full = pd.DataFrame({"bucket": np.arange(buckets + 1)})
    return full.merge(counts, on="bucket", how="left").fillna(0).astype("int64")


def threshold_sweep(histogram: pd.DataFrame, buckets: int, costs: CostMatrix) -> pd.DataFrame:
    """Confusion counts, recall, precision, positive rate and expected cost for every threshold ``b / buckets``.

    A row is predicted positive when ``score >= threshold``, i.e. when its bucket is ``>= b``.
    """
    ordered = histogram.sort_values("bucket")
    tp = ordered["positives"].to_numpy()[::-1].cumsum()[::-1]
    fp = ordered["negatives"].to_numpy()[::-1].cumsum()[::-1]
    positives, negatives = int(ordered["positives"].sum()), int(ordered["negatives"].sum())
    fn, tn = positives - tp, negatives - fp
    rows = max(positives + negatives, 1)
    flagged = tp + fp
    sweep = pd.DataFrame({"threshold": ordered["bucket"].to_numpy() / buckets, "tp": tp, "fp": fp, "fn": fn, "tn": tn})
    sweep["recall"] = tp / positives if positives else 0.0
    sweep["precision"] = np.divide(tp, flagged, out=np.zeros(len(tp)), where=flagged > 0)
    sweep["positive_rate"] = flagged / rows
    sweep["expected_cost"] = (costs.true_positive * tp + costs.false_positive * fp
                              + costs.false_negative * fn + costs.true_negative * tn) / rows
    return sweep[SWEEP_COLUMNS]


def constraint_violations(row: pd.Series | dict, objective: ObjectiveSettings) -> list[str]:
    """The constraints that the metrics in `row` break, each described in words."""
    broken = []
    if objective.min_recall is not None and row["recall"] < objective.min_recall:
        broken.append(f"recall {row['recall']:.4f} < min_recall {objective.min_recall}")
    if objective.max_positive_rate is not None and row["positive_rate"] > objective.max_positive_rate:
        broken.append(f"positive_rate {row['positive_rate']:.4f} > max_positive_rate {objective.max_positive_rate}")
    return broken


def choose_threshold(sweep: pd.DataFrame, objective: ObjectiveSettings) -> ThresholdChoice:
    """Lowest expected cost among thresholds meeting every constraint; ties go to the higher threshold.

    With no feasible threshold, the unconstrained optimum is returned with the violations it has.
    """
    feasible = sweep[[not constraint_violations(row, objective) for _, row in sweep.iterrows()]]
    candidates = feasible if len(feasible) else sweep
    best = candidates.sort_values(["expected_cost", "threshold"], ascending=[True, False]).iloc[0]
    violations = () if len(feasible) else ("no threshold meets the constraints; best unconstrained: "
                                           + "; ".join(constraint_violations(best, objective)),)
    return ThresholdChoice(float(best["threshold"]), {k: float(best[k]) for k in SWEEP_COLUMNS[1:]}, violations)


def decision_outcome_costs(threshold: float | Column, costs: CostMatrix, score: str = "score",
                           label: str = "label") -> Column:
    """Per-row cost of deciding ``score >= threshold`` (a number or a column) given the true label."""
    flagged, positive = F.col(score) >= threshold, F.col(label) == 1
    return (F.when(flagged & positive, costs.true_positive)
            .when(flagged, costs.false_positive)
            .when(positive, costs.false_negative)
            .otherwise(costs.true_negative))


def expected_cost(scored: DataFrame, threshold: float, costs: CostMatrix,
                  score: str = "score", label: str = "label") -> float:
    """Mean cost per row of the decisions at `threshold`, aggregated in Spark."""
    return float(scored.agg(F.avg(decision_outcome_costs(threshold, costs, score, label))).head()[0])
