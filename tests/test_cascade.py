"""Cascade: one pyfunc holding both stages; distributed scoring equals applying the stages by hand."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality

from lakeforge.cascade import LONG_DELAY, OUTPUT_SCHEMA, fit_cascade, long_delay_labels, score_cascade
from lakeforge.config import ModelSettings, TargetSettings
from lakeforge.errors import StepError
from lakeforge.tracking import configure_mlflow

from conftest import flights_config

SETTINGS = ModelSettings(numeric_features=["signal"], categorical_features=["carrier"], params={"max_iter": 20})


def flights_frame(rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"flight_id": [f"f{i:05d}" for i in range(rows)],
                          "carrier": rng.choice(["AA", "UA"], rows), "signal": rng.normal(size=rows)})
    delay = 40 * frame["signal"] + rng.normal(0, 20, rows)
    frame["delayed"] = (delay > 15).astype(int)
    frame[LONG_DELAY] = (delay > 60).astype(int)
    return frame


def test_cascade_scoring_equals_the_stages_applied_by_hand(spark, tmp_path):
    frame = flights_frame()
    cascade = fit_cascade(frame, SETTINGS, "delayed", seed=1, threshold_a=0.4, threshold_b=0.5)
    configure_mlflow(flights_config(tmp_path))
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="cascade", python_model=cascade, registered_model_name="cascade-test")
    assert info.registered_model_version == 1

    scored = score_cascade(spark.createDataFrame(frame), info.model_uri, "flight_id", SETTINGS)

    columns = ["carrier", "signal"]
    delay_score = cascade.stage_a.predict_proba(frame[columns])[:, 1]
    flagged = delay_score >= 0.4
    long_score = np.where(flagged, cascade.stage_b.predict_proba(frame[columns])[:, 1], np.nan)
    outcome = np.where(~flagged, 0, np.where(long_score >= 0.5, 2, 1))
    expected = spark.createDataFrame(
        [(fid, float(a), None if np.isnan(b) else float(b), int(o))
         for fid, a, b, o in zip(frame["flight_id"], delay_score, long_score, outcome)],
        f"flight_id string, {OUTPUT_SCHEMA}")
    assert set(outcome) == {0, 1, 2}
    assert_approx_df_equality(scored.orderBy("flight_id"), expected.orderBy("flight_id"), precision=1e-9,
                              ignore_nullable=True, allow_nan_equality=True)


def test_stage_b_needs_both_long_and_short_delays():
    frame = flights_frame().assign(**{LONG_DELAY: 0})
    with pytest.raises(StepError, match="stage B needs delayed rows with and without a long_delay"):
        fit_cascade(frame, SETTINGS, "delayed", seed=1, threshold_a=0.5, threshold_b=0.5)


def test_long_delay_label_uses_the_delay_column(spark):
    flights = spark.createDataFrame(
        [(2013, 1, 1, "AA", 1, "EWR", 500, 505, 70.0), (2013, 1, 1, "AA", 2, "EWR", 600, 601, 20.0),
         (2013, 1, 1, "AA", 3, "EWR", 700, None, None)],
        "year int, month int, day int, carrier string, flight int, origin string, sched_dep_time int, "
        "dep_time int, arr_delay double")
    labels = long_delay_labels(flights, TargetSettings(), minutes=60)
    assert {tuple(r) for r in labels.collect()} == {("20130101-AA1-EWR-0500", 1), ("20130101-AA2-EWR-0600", 0)}
