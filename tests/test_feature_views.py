"""Feature views: past-only aggregates against brute-force references, select and python views."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality

from lakeforge.config import FeatureViewSettings
from lakeforge.features.aggregates import as_of_points, snapshots
from lakeforge.features.views import view_rows, view_table

EPOCH = dt.datetime(2013, 1, 1)
WINDOW = 3 * 86400


def random_events(seed: int, rows: int = 400) -> pd.DataFrame:
    """Events on 3 keys over 10 days, on whole hours so that many share a timestamp."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "k": rng.choice(["a", "b", "c"], rows),
        "event_time": [EPOCH + dt.timedelta(hours=int(h)) for h in rng.integers(0, 240, rows)],
        "x": np.where(rng.uniform(size=rows) < 0.1, np.nan, rng.normal(size=rows).round(3)),
    })


def brute_force(events: pd.DataFrame, key: str, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    rows = events[(events["k"] == key) & (events["event_time"] >= start) & (events["event_time"] < end)]
    x = rows["x"].dropna()
    return {"n": len(rows), "mean_x": x.mean() if len(x) else None, "max_x": x.max() if len(x) else None,
            "sum_x": x.sum() if len(x) else None, "distinct_x": int(x.nunique())}


# Spark has no DISTINCT window aggregates, so the as-of form takes the others; snapshots take any aggregate.
METRICS = {"n": "count(*)", "mean_x": "avg(x)", "max_x": "max(x)", "sum_x": "sum(x)"}
SNAPSHOT_METRICS = {**METRICS, "distinct_x": "count(DISTINCT x)"}


def events_frame(spark, events: pd.DataFrame):
    return spark.createDataFrame(events.astype(object).where(events.notna(), None),
                                 "k string, event_time timestamp, x double")


def assert_matches(got: dict, want: dict) -> None:
    """Every metric of `got` equals the reference (None for an empty window)."""
    assert set(METRICS) <= got.keys()
    for name in got.keys() & want.keys():
        value = want[name]
        if value is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(value), name


@pytest.mark.parametrize("seed", [1, 2])
def test_as_of_aggregates_see_strictly_earlier_rows_only(spark, seed):
    events = random_events(seed)
    rng = np.random.default_rng(seed + 100)
    # every event's own (key, time) -- ties with other events -- plus query times between the hours
    queries = pd.concat([events[["k", "event_time"]], pd.DataFrame({
        "k": rng.choice(["a", "b", "c", "d"], 50),
        "event_time": [EPOCH + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 260 * 60, 50)]})])
    points = spark.createDataFrame(queries, "k string, event_time timestamp")
    got = as_of_points(events_frame(spark, events), points, ["k"], METRICS, WINDOW).collect()
    assert len(got) == len(queries.drop_duplicates()) == len({(r["k"], r["event_time"]) for r in got})
    for row in got:
        t = row["event_time"]
        assert_matches(row.asDict(), brute_force(events, row["k"], t - dt.timedelta(seconds=WINDOW), t))


@pytest.mark.parametrize("metrics", [SNAPSHOT_METRICS, METRICS], ids=["general", "decomposed"])
def test_daily_snapshots_exclude_the_day_they_are_as_of(spark, metrics):
    events = random_events(3)
    rows = snapshots(events_frame(spark, events), ["k"], metrics, WINDOW, 86400).collect()
    got = {(r["k"], r["event_time"]): r.asDict() for r in rows}
    assert len(got) == len(rows)  # one row per key and day: materializing does not check (`unique_rows`)
    expected = {}
    for key in "abc":
        for day in range(0, 14):
            start = EPOCH + dt.timedelta(days=day)
            reference = brute_force(events, key, start - dt.timedelta(seconds=WINDOW), start)
            if reference["n"]:
                expected[(key, start)] = {m: reference[m] for m in metrics}
    assert set(got) == set(expected)
    for snapshot, want in expected.items():
        assert_matches(got[snapshot], want)


def test_select_view_rows_and_its_join_description(spark):
    view = FeatureViewSettings(source="weather", keys=["origin"], event_time="time_hour", ttl="3h",
                               select={"temp_c": "round((temp - 32) / 1.8, 1)"})
    weather = spark.createDataFrame([("EWR", dt.datetime(2013, 1, 1, 5), 41.0), ("EWR", None, 50.0)],
                                    "origin string, time_hour timestamp, temp double")
    rows = view_rows(spark, "w", view, {"weather": weather})
    expected = spark.createDataFrame([("EWR", dt.datetime(2013, 1, 1, 5), 5.0)],
                                     "origin string, event_time timestamp, temp_c double")
    assert_df_equality(rows, expected, ignore_nullable=True)
    table = view_table("w", view, rows)
    assert (table.keys, table.max_age_seconds, table.features) == (("origin",), 3 * 3600, ("temp_c",))
    assert not table.unique_rows  # a source may hold two rows for one key and time: materializing checks
    daily = FeatureViewSettings(source="weather", keys=["origin"], event_time="time_hour",
                                aggregate={"window": "3d", "every": "1d", "metrics": {"n": "count(*)"}})
    assert view_table("d", daily, view_rows(spark, "d", daily, {"weather": weather})).unique_rows


def hottest_hour_per_day(inputs, spark):
    """A python view: the day's highest temperature per origin, known at the end of the day."""
    from pyspark.sql import functions as F

    weather = inputs["weather"]
    return (weather.groupBy("origin", F.date_trunc("day", "time_hour").alias("day"))
            .agg(F.max("temp").alias("max_temp"))
            .select("origin", (F.col("day") + F.expr("INTERVAL 1 DAY")).alias("day_end"), "max_temp"))


def test_python_view_returns_keys_event_time_and_features(spark):
    view = FeatureViewSettings(python="test_feature_views:hottest_hour_per_day", keys=["origin"],
                               event_time="day_end", ttl="1d", inputs=["weather"])
    weather = spark.createDataFrame([("EWR", dt.datetime(2013, 1, 1, 5), 41.0), ("EWR", dt.datetime(2013, 1, 1, 9), 45.0)],
                                    "origin string, time_hour timestamp, temp double")
    rows = view_rows(spark, "hot", view, {"weather": weather, "planes": None})
    assert [tuple(r) for r in rows.collect()] == [("EWR", dt.datetime(2013, 1, 2), 45.0)]
    assert view_table("hot", view, rows).features == ("max_temp",)


def test_the_dataset_keeps_the_declared_spine_columns_and_derives_from_all(spark):
    from lakeforge.config import DatasetSettings
    from lakeforge.features.dataset import build_dataset

    spine = spark.createDataFrame([("k1", EPOCH, 1, "a", 2.0, 3.0)],
                                  "key string, time timestamp, label int, city string, x double, y double")
    settings = DatasetSettings(spine={"source": "s", "time": "t"}, spine_columns=["city"],
                               derived={"x_plus_y": "x + y"})
    built = build_dataset(spine, {}, settings)
    assert built.columns == ["key", "time", "label", "city", "x_plus_y", "_month"]
    assert built.select("x_plus_y").head()[0] == 5.0
    everything = build_dataset(spine, {}, settings.model_copy(update={"spine_columns": None}))
    assert everything.columns == [*spine.columns, "x_plus_y", "_month"]
