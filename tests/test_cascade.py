"""Cascade: one pyfunc holding both stages; distributed scoring equals applying the stages by hand."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality

from lakeforge.cascade import OUTPUT_SCHEMA, STAGE_B, fit_cascade, score_cascade, with_stage_b_label
from lakeforge.config import ModelSettings
from lakeforge.errors import StepError
from lakeforge.tracking import configure_mlflow

from conftest import flights_config

SETTINGS = ModelSettings(numeric_features=["signal"], categorical_features=["carrier"], params={"max_iter": 20})


def flights_frame(rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"key": [f"f{i:05d}" for i in range(rows)],
                          "carrier": rng.choice(["AA", "UA"], rows), "signal": rng.normal(size=rows)})
    delay = 40 * frame["signal"] + rng.normal(0, 20, rows)
    frame["label"] = (delay > 15).astype(int)
    frame[STAGE_B] = (delay > 60).astype(int)
    return frame


def test_cascade_scoring_equals_the_stages_applied_by_hand(spark, tmp_path):
    frame = flights_frame()
    cascade = fit_cascade(frame, SETTINGS, "label", seed=1, threshold_a=0.4, threshold_b=0.5)
    configure_mlflow(flights_config(tmp_path))
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="cascade", python_model=cascade, registered_model_name="cascade-test")
    assert info.registered_model_version == 1

    scored = score_cascade(spark.createDataFrame(frame), info.model_uri, "key", SETTINGS)

    columns = ["carrier", "signal"]
    delay_score = cascade.stage_a.predict_proba(frame[columns])[:, 1]
    flagged = delay_score >= 0.4
    long_score = np.where(flagged, cascade.stage_b.predict_proba(frame[columns])[:, 1], np.nan)
    outcome = np.where(~flagged, 0, np.where(long_score >= 0.5, 2, 1))
    expected = spark.createDataFrame(
        [(fid, float(a), None if np.isnan(b) else float(b), int(o))
         for fid, a, b, o in zip(frame["key"], delay_score, long_score, outcome)],
        f"key string, {OUTPUT_SCHEMA}")
    assert set(outcome) == {0, 1, 2}
    assert_approx_df_equality(scored.orderBy("key"), expected.orderBy("key"), precision=1e-9,
                              ignore_nullable=True, allow_nan_equality=True)


def test_stage_b_needs_both_values_of_its_label():
    frame = flights_frame().assign(**{STAGE_B: 0})
    with pytest.raises(StepError, match="stage B needs positive rows with both values of cascade.stage_b_label"):
        fit_cascade(frame, SETTINGS, "label", seed=1, threshold_a=0.5, threshold_b=0.5)


def test_stage_b_label_is_a_sql_condition_over_the_dataset_row(spark):
    rows = spark.createDataFrame([("a", 70.0), ("b", 20.0), ("c", None)], "key string, arr_delay double")
    labelled = with_stage_b_label(rows, "arr_delay > 60")
    assert {tuple(r) for r in labelled.select("key", STAGE_B).collect()} == {("a", 1), ("b", 0), ("c", None)}
