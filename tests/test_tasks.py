"""Task types: each task's metrics in Spark, per window and in memory agree with scikit-learn."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (accuracy_score, f1_score, log_loss, mean_absolute_error, precision_score, r2_score,
                             recall_score, roc_auc_score)

from lakeforge.config import ObjectiveSettings
from lakeforge.modeling.portable import decide_classes
from lakeforge.tasks import task_for

CLASSES = ["drizzle", "fog", "rain", "sun"]
MULTICLASS_SCHEMA = "month long, label string, prediction string, probabilities map<string, double>"


def multiclass_rows(seed: int = 3, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(len(CLASSES)), rows)
    truth = np.array([rng.choice(CLASSES, p=p) for p in probabilities])
    return pd.DataFrame({"month": rng.choice([4, 5], rows), "label": truth,
                         "prediction": decide_classes(probabilities, CLASSES, None),
                         "probabilities": [dict(zip(CLASSES, p)) for p in probabilities.tolist()]})


def test_binary_live_metrics_per_window_match_scikit_learn(spark):
    rng = np.random.default_rng(5)
    label = rng.integers(0, 2, 600)
    scored = pd.DataFrame({"month": np.repeat([4, 5], 300), "label": label,
                           "score": np.round(np.clip(label * 0.3 + rng.uniform(0, 0.7, 600), 0, 1), 2)})
    rows = task_for("binary_classification").window_metrics(spark.createDataFrame(scored), "month", threshold=0.5)
    assert [r["month"] for r in rows] == [4, 5]
    for got, (_, expected) in zip(rows, scored.groupby("month")):
        assert got["rows"] == len(expected) and got["base_rate"] == pytest.approx(expected["label"].mean())
        assert got["auc"] == pytest.approx(roc_auc_score(expected["label"], expected["score"]), abs=1e-12)
        assert got["log_loss"] == pytest.approx(log_loss(expected["label"], expected["score"]), abs=1e-9)
        assert got["precision"] == pytest.approx(precision_score(expected["label"], expected["score"] >= 0.5))
        assert got["recall"] == pytest.approx(recall_score(expected["label"], expected["score"] >= 0.5))


def test_binary_auc_is_nan_when_a_window_has_one_class(spark):
    scored = spark.createDataFrame(pd.DataFrame({"label": [1, 1], "score": [0.2, 0.9]}))
    metrics = task_for("binary_classification").spark_metrics(scored, threshold=0.5)
    assert np.isnan(metrics["auc"]) and metrics["recall"] == 0.5


def test_multiclass_metrics_match_scikit_learn(spark):
    frame = multiclass_rows()
    task = task_for("multiclass_classification")
    proba = np.array([[p[c] for c in CLASSES] for p in frame["probabilities"]])
    for metrics in (task.spark_metrics(spark.createDataFrame(frame, MULTICLASS_SCHEMA)),
                    task.frame_metrics(frame["label"], frame[["prediction", "probabilities"]])):
        assert metrics["rows"] == len(frame)
        assert metrics["accuracy"] == pytest.approx(accuracy_score(frame["label"], frame["prediction"]))
        assert metrics["macro_f1"] == pytest.approx(f1_score(frame["label"], frame["prediction"], average="macro"))
        assert metrics["log_loss"] == pytest.approx(log_loss(frame["label"], proba, labels=CLASSES))
        recalls = recall_score(frame["label"], frame["prediction"], labels=CLASSES, average=None)
        assert [metrics[f"recall_{c}"] for c in CLASSES] == pytest.approx(list(recalls))
    by_month = task.window_metrics(spark.createDataFrame(frame, MULTICLASS_SCHEMA), "month")
    for got, (_, expected) in zip(by_month, frame.groupby("month")):
        assert got["accuracy"] == pytest.approx(accuracy_score(expected["label"], expected["prediction"]))


def test_a_class_cost_matrix_changes_the_decision_and_prices_it():
    probabilities = np.array([[0.1, 0.2, 0.3, 0.4], [0.05, 0.05, 0.45, 0.45]])
    assert list(decide_classes(probabilities, CLASSES, None)) == ["sun", "rain"]
    costs = {"rain": {"sun": 10.0}}  # calling rain "sun" is expensive
    assert list(decide_classes(probabilities, CLASSES, costs)) == ["rain", "rain"]
    task = task_for("multiclass_classification", ObjectiveSettings(class_costs=costs))
    outputs = pd.DataFrame({"prediction": ["sun", "rain"], "probabilities": [{}, {}]})
    assert task.frame_metrics(pd.Series(["rain", "fog"]), outputs)["expected_cost"] == pytest.approx((10 + 1) / 2)


def test_regression_metrics_match_scikit_learn_and_price_asymmetric_errors(spark):
    rng = np.random.default_rng(9)
    label = np.round(rng.gamma(2, 50, 500))
    label[:7] = 0  # excluded from MAPE and counted
    frame = pd.DataFrame({"label": label, "prediction": label + rng.normal(0, 20, 500)})
    task = task_for("regression", ObjectiveSettings(unit_costs={"under": 3.0, "over": 1.0}))
    error = frame["prediction"] - frame["label"]
    nonzero = frame["label"] != 0
    for metrics in (task.spark_metrics(spark.createDataFrame(frame)), task.frame_metrics(frame["label"], frame)):
        assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)))
        assert metrics["mae"] == pytest.approx(mean_absolute_error(frame["label"], frame["prediction"]))
        assert metrics["r2"] == pytest.approx(r2_score(frame["label"], frame["prediction"]), abs=1e-9)
        assert metrics["mape"] == pytest.approx(np.mean(np.abs(error[nonzero] / frame["label"][nonzero])))
        assert metrics["mape_excluded_rows"] == 7
        assert metrics["expected_cost"] == pytest.approx(np.mean(np.where(error < 0, -3.0 * error, error)))


@pytest.mark.parametrize("task_type, schema", [
    ("binary_classification", "label int, score double"),
    ("multiclass_classification", "label string, prediction string, probabilities map<string, double>"),
    ("regression", "label double, prediction double")])
def test_no_labelled_rows_give_no_metrics_rather_than_an_error(spark, task_type, schema):
    task = task_for(task_type, ObjectiveSettings())
    assert task.spark_metrics(spark.createDataFrame([], schema), threshold=0.5) == {"rows": 0.0}
    assert task.window_metrics(spark.createDataFrame([], f"month int, {schema}"), "month", threshold=0.5) == []
