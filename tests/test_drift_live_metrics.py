"""Live metrics per window on Spark agree with scikit-learn."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, precision_score, recall_score, roc_auc_score

from lakeforge.drift.live_metrics import live_metrics


def test_live_metrics_match_scikit_learn_per_window(spark):
    rng = np.random.default_rng(5)
    frames = []
    for month in (4, 5):
        label = rng.integers(0, 2, 300)
        score = np.round(np.clip(label * 0.3 + rng.uniform(0, 0.7, 300), 0, 1), 2)  # rounded: many ties
        frames.append(pd.DataFrame({"month": month, "delayed": label, "score": score,
                                    "prediction": (score >= 0.5).astype(int)}))
    scored = pd.concat(frames)
    rows = {r["month"]: r for r in live_metrics(spark.createDataFrame(scored), "month", "delayed").collect()}
    for month, expected in scored.groupby("month"):
        got = rows[month]
        assert got["rows"] == len(expected) and got["positives"] == expected["delayed"].sum()
        assert got["auc"] == pytest.approx(roc_auc_score(expected["delayed"], expected["score"]), abs=1e-12)
        assert got["log_loss"] == pytest.approx(log_loss(expected["delayed"], expected["score"]), abs=1e-9)
        assert got["precision"] == pytest.approx(precision_score(expected["delayed"], expected["prediction"]))
        assert got["recall"] == pytest.approx(recall_score(expected["delayed"], expected["prediction"]))


def test_auc_is_null_when_a_window_has_one_class(spark):
    scored = spark.createDataFrame(pd.DataFrame({"month": [4, 4], "delayed": [1, 1], "score": [0.2, 0.9],
                                                 "prediction": [0, 1]}))
    row = live_metrics(scored, "month", "delayed").head()
    assert row["auc"] is None and row["recall"] == 0.5
