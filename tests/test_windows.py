"""Time windows on the dataset's time: half-open ranges, period labels that keep years apart."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from lakeforge import score, train
from lakeforge.errors import StepError
from lakeforge.windows import in_window, period_label

from conftest import flights_config

TIMES = [dt.datetime(2012, 1, 2, 3), dt.datetime(2012, 12, 31, 23, 59), dt.datetime(2013, 1, 1),
         dt.datetime(2016, 1, 20), dt.datetime(2016, 1, 1)]


@pytest.mark.parametrize("every,labels", [
    ("day", ["2012-01-02", "2012-12-31", "2013-01-01", "2016-01-20", "2016-01-01"]),
    ("week", ["2012-W01", "2013-W01", "2013-W01", "2016-W03", "2015-W53"]),  # ISO weeks: 2012-12-31 is in 2013's first
    ("month", ["2012-01", "2012-12", "2013-01", "2016-01", "2016-01"]),
    ("quarter", ["2012-Q1", "2012-Q4", "2013-Q1", "2016-Q1", "2016-Q1"]),
    ("year", ["2012", "2012", "2013", "2016", "2016"]),
])
def test_period_labels_are_period_starts(spark, every, labels):
    rows = spark.createDataFrame([(t,) for t in TIMES], "time timestamp")
    assert [r[0] for r in rows.select(period_label(every)).collect()] == labels


def test_windows_are_half_open(spark):
    rows = spark.createDataFrame([(t,) for t in TIMES], "time timestamp")
    january = in_window(rows, (dt.datetime(2013, 1, 1), dt.datetime(2013, 2, 1)))
    assert [r[0] for r in january.collect()] == [dt.datetime(2013, 1, 1)]


def two_januaries(rows_per_month: int = 400) -> pd.DataFrame:
    """A dataset of January 2012, July 2012 and January 2013 (as the features step writes one)."""
    rng = np.random.default_rng(3)
    frames = []
    for year, month in [(2012, 1), (2012, 7), (2013, 1)]:
        signal = rng.normal(size=rows_per_month)
        frames.append(pd.DataFrame({
            "key": [f"{year}{month:02d}-{i}" for i in range(rows_per_month)],
            "time": pd.Timestamp(year, month, 10) + pd.to_timedelta(rng.integers(0, 15 * 86400, rows_per_month), "s"),
            "label": (signal + rng.normal(0, 0.5, rows_per_month) > 0).astype(int),
            "month": month, "distance": signal, "carrier": "AA"}))
    return pd.concat(frames, ignore_index=True)


def test_a_year_boundary_keeps_two_januaries_apart(spark, tmp_path):
    config = flights_config(tmp_path, **{
        "windows.train": ["2012-01-01", "2013-01-01"], "windows.score": ["2013-01-01", "2013-02-01"],
        "model.numeric_features": ["distance", "month"], "model.categorical_features": ["carrier"],
        "model.text_features": [], "model.params.max_iter": 10})
    spark.createDataFrame(two_januaries()).write.format("delta").save(config.table_path(config.dataset.table))
    assert train.run(spark, config).rows_in == 800  # January and July 2012, not January 2013
    client = __import__("mlflow").MlflowClient()
    version = client.get_model_version_by_alias(config.model.registered_name, "challenger").version
    client.set_registered_model_alias(config.model.registered_name, config.model.alias, version)
    scored = score.run(spark, config)
    assert scored.rows_in == 400
    keys = {r[0][:6] for r in spark.read.format("delta").load(config.table_path("predictions")).select("key").collect()}
    assert keys == {"201301"}


def test_a_window_without_rows_is_an_error_naming_it(spark, tmp_path):
    config = flights_config(tmp_path, **{
        "windows.train": ["2014-01-01", "2015-01-01"], "model.numeric_features": ["distance"],
        "model.categorical_features": [], "model.text_features": []})
    spark.createDataFrame(two_januaries(50)).write.format("delta").save(config.table_path(config.dataset.table))
    with pytest.raises(StepError, match=r"train: windows.train \[2014-01-01, 2015-01-01\) matches no rows of flight_features v0"):
        train.run(spark, config)
