import datetime as dt

import pytest
from chispa import assert_df_equality

from lakeforge.asof import asof_join
from lakeforge.features import weather_as_of_departure


def ts(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2013, 1, 1, hour, minute)


def test_weather_as_of_scheduled_hour(spark):
    flights = spark.createDataFrame(
        [("f1", "EWR", ts(10)), ("f2", "EWR", ts(12)), ("f3", "JFK", ts(10)), ("f4", "LGA", ts(10)), ("f5", "EWR", ts(17))],
        "flight_id string, origin string, time_hour timestamp",
    )
    # EWR has no row for 12:00 (f2 takes 11:00); LGA has weather only in the future; f5 is 5h past EWR's last row.
    weather = spark.createDataFrame(
        [("EWR", ts(9), 30.0), ("EWR", ts(10), 31.0), ("EWR", ts(11), 32.0), ("EWR", ts(12, 30), 40.0),
         ("JFK", ts(10), 20.0), ("LGA", ts(11), 50.0)],
        "origin string, time_hour timestamp, temp double",
    )
    weather = weather.withColumn("dewp", weather.temp - 10)
    for column in ["humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]:
        weather = weather.withColumn(column, weather.temp * 0 + 1.0)
    got = weather_as_of_departure(flights, weather, max_staleness_hours=3).select(
        "flight_id", "weather_time", "temp", "weather_found")
    expected = spark.createDataFrame(
        [("f1", ts(10), 31.0, True), ("f2", ts(11), 32.0, True), ("f3", ts(10), 20.0, True),
         ("f4", None, None, False), ("f5", None, None, False)],
        "flight_id string, weather_time timestamp, temp double, weather_found boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_ties_are_deterministic_and_never_from_the_future(spark):
    left = spark.createDataFrame([(1, "a", ts(5)), (2, "a", ts(6))], "id int, k string, t timestamp")
    right = spark.createDataFrame(
        [("a", ts(5), 1.0), ("a", ts(5), 2.0), ("a", ts(5, 1), 9.0), ("a", ts(6), 3.0)],
        "k string, rt timestamp, v double",
    )
    got = asof_join(left, right, left_id="id", keys=["k"], left_time="t", right_time="rt", max_age_seconds=7200)
    expected = spark.createDataFrame(
        [(1, "a", ts(5), ts(5), 2.0), (2, "a", ts(6), ts(6), 3.0)], "id int, k string, t timestamp, rt timestamp, v double"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_column_clash_is_refused(spark):
    left = spark.createDataFrame([(1, "a", ts(5), 0.0)], "id int, k string, t timestamp, v double")
    right = spark.createDataFrame([("a", ts(5), 1.0)], "k string, rt timestamp, v double")
    with pytest.raises(ValueError, match=r"\['v'\] already exist"):
        asof_join(left, right, left_id="id", keys=["k"], left_time="t", right_time="rt", max_age_seconds=60)
