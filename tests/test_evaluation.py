"""Cost-sensitive evaluation: histogram threshold sweep, expected cost in Spark, sliced metrics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, log_loss, precision_score, recall_score, roc_auc_score

from lakeforge.config import CostMatrix, ObjectiveSettings, SliceSettings
from lakeforge.evaluation.objectives import (choose_threshold, constraint_violations, expected_cost,
                                             score_histogram, threshold_sweep)
from lakeforge.evaluation.slices import slice_metrics
from lakeforge.tasks import task_for

COSTS = CostMatrix(true_positive=-1.0, false_positive=1.0, false_negative=5.0, true_negative=0.0)
BUCKETS = 100


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """3,000 labelled scores, informative but noisy, with a carrier where the model is poor."""
    rng = np.random.default_rng(7)
    label = rng.binomial(1, 0.3, 3000)
    score = np.clip(0.3 * label + rng.normal(0.35, 0.2, 3000), 0, 1)
    carrier = rng.choice(["AA", "UA", "ZZ"], 3000)
    score = np.where(carrier == "ZZ", rng.uniform(0, 0.4, 3000), score)
    return pd.DataFrame({"score": score, "label": label, "carrier": carrier})


def brute_force_costs(frame: pd.DataFrame, costs: CostMatrix) -> pd.DataFrame:
    """Cost, recall and positive rate of every threshold b / BUCKETS, straight from the raw rows."""
    rows = []
    y = frame["label"].to_numpy()
    for threshold in np.arange(BUCKETS + 1) / BUCKETS:
        flagged = frame["score"].to_numpy() >= threshold
        tp, fp = np.sum(flagged & (y == 1)), np.sum(flagged & (y == 0))
        fn, tn = np.sum(~flagged & (y == 1)), np.sum(~flagged & (y == 0))
        cost = (costs.true_positive * tp + costs.false_positive * fp + costs.false_negative * fn
                + costs.true_negative * tn) / len(y)
        rows.append({"threshold": threshold, "expected_cost": cost, "recall": tp / np.sum(y == 1),
                     "positive_rate": flagged.mean()})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("min_recall, max_positive_rate", [(None, None), (0.9, None), (None, 0.2), (0.5, 0.45)])
def test_threshold_matches_brute_force(spark, frame, min_recall, max_positive_rate):
    objective = ObjectiveSettings(costs=COSTS, min_recall=min_recall, max_positive_rate=max_positive_rate,
                                  score_buckets=BUCKETS)
    sweep = threshold_sweep(score_histogram(spark.createDataFrame(frame), BUCKETS), BUCKETS, COSTS)
    choice = choose_threshold(sweep, objective)

    brute = brute_force_costs(frame, COSTS)
    feasible = brute[[not constraint_violations(row, objective) for _, row in brute.iterrows()]]
    best = feasible.sort_values(["expected_cost", "threshold"], ascending=[True, False]).iloc[0]
    assert choice.feasible
    assert choice.threshold == pytest.approx(best["threshold"])
    assert choice.metrics["expected_cost"] == pytest.approx(best["expected_cost"])
    np.testing.assert_allclose(sweep["expected_cost"], brute["expected_cost"])


def test_unconstrained_optimum_is_the_minimum_over_all_thresholds(spark, frame):
    objective = ObjectiveSettings(costs=COSTS, score_buckets=BUCKETS)
    sweep = threshold_sweep(score_histogram(spark.createDataFrame(frame), BUCKETS), BUCKETS, COSTS)
    choice = choose_threshold(sweep, objective)
    assert choice.metrics["expected_cost"] == pytest.approx(brute_force_costs(frame, COSTS)["expected_cost"].min())


def test_infeasible_constraints_are_reported(spark, frame):
    objective = ObjectiveSettings(costs=COSTS, min_recall=0.99, max_positive_rate=0.05, score_buckets=BUCKETS)
    sweep = threshold_sweep(score_histogram(spark.createDataFrame(frame), BUCKETS), BUCKETS, COSTS)
    choice = choose_threshold(sweep, objective)
    assert not choice.feasible
    assert "min_recall 0.99" in choice.violations[0] or "max_positive_rate 0.05" in choice.violations[0]


def test_expected_cost_in_spark_equals_numpy(spark, frame):
    threshold = 0.42
    flagged, y = frame["score"].to_numpy() >= threshold, frame["label"].to_numpy()
    cost_matrix = np.array([[COSTS.true_negative, COSTS.false_positive], [COSTS.false_negative, COSTS.true_positive]])
    expected = cost_matrix[y, flagged.astype(int)].mean()
    assert expected_cost(spark.createDataFrame(frame), threshold, COSTS) == pytest.approx(expected)


def test_binary_metrics_match_scikit_learn_in_spark_and_in_memory(spark, frame):
    task = task_for("binary_classification", ObjectiveSettings(costs=COSTS))
    tied = frame.assign(score=frame["score"].round(2))  # many ties: AUC counts them one half
    for metrics in (task.spark_metrics(spark.createDataFrame(tied), threshold=0.5),
                    task.frame_metrics(tied["label"], tied[["score"]], threshold=0.5)):
        assert metrics["rows"] == len(frame)
        assert metrics["auc"] == pytest.approx(roc_auc_score(tied["label"], tied["score"]), abs=1e-12)
        assert metrics["pr_auc"] == pytest.approx(average_precision_score(tied["label"], tied["score"]), abs=1e-12)
        assert metrics["log_loss"] == pytest.approx(log_loss(tied["label"], np.clip(tied["score"], 1e-15, 1 - 1e-15)))
        assert metrics["brier"] == pytest.approx(np.mean((tied["score"] - tied["label"]) ** 2))
        assert metrics["precision"] == pytest.approx(precision_score(tied["label"], tied["score"] >= 0.5))
        assert metrics["recall"] == pytest.approx(recall_score(tied["label"], tied["score"] >= 0.5))
        cost_matrix = np.array([[COSTS.true_negative, COSTS.false_positive], [COSTS.false_negative, COSTS.true_positive]])
        flagged = (tied["score"].to_numpy() >= 0.5).astype(int)
        assert metrics["expected_cost"] == pytest.approx(cost_matrix[tied["label"].to_numpy(), flagged].mean())


def test_slices_flag_the_carrier_where_the_model_is_poor(spark, frame):
    settings = SliceSettings(columns=["carrier"], min_rows=100, metric="recall", max_gap=0.2)
    slices = binary_slices(spark, frame, settings).set_index(["slice", "value"])
    for carrier, rows in frame.groupby("carrier"):
        recall = ((rows["score"] >= 0.5) & (rows["label"] == 1)).sum() / (rows["label"] == 1).sum()
        assert slices.loc[("carrier", carrier), "rows"] == len(rows)
        assert slices.loc[("carrier", carrier), "recall"] == pytest.approx(recall)
    assert slices.index[slices["flagged"]].tolist() == [("carrier", "ZZ")]


def test_small_slices_are_never_flagged(spark, frame):
    settings = SliceSettings(columns=["carrier"], min_rows=len(frame), metric="recall", max_gap=0.2)
    assert not binary_slices(spark, frame, settings)["flagged"].any()


def binary_slices(spark, frame: pd.DataFrame, settings: SliceSettings) -> pd.DataFrame:
    task = task_for("binary_classification", ObjectiveSettings(costs=COSTS))
    return slice_metrics(spark.createDataFrame(frame), task.slice_aggregates(threshold=0.5), settings, "recall", True)
