"""Point-in-time retrieval over several feature views: max age per view, no leakage, late rows, pinning."""
import datetime as dt
import re

from chispa import assert_df_equality

from lakeforge.features.retrieval import point_in_time_join, within_time_bounds
from lakeforge.features.views import ViewTable
from lakeforge.tables import read_pinned


def ts(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2013, 1, day, hour)


WEATHER = ViewTable("weather", ("origin",), 2 * 3600, False, ("temp",))
RATES = ViewTable("rates", ("carrier",), 24 * 3600, True, ("rate",))
PLANES = ViewTable("planes", ("tailnum",), None, False, ("seats",))
SPINE_SCHEMA = "id string, origin string, carrier string, tailnum string, t timestamp, label int"


def spine(spark):
    return spark.createDataFrame(
        [("f1", "EWR", "UA", "N1", ts(2, 10), 1),
         ("f2", "EWR", "AA", "N2", ts(2, 15), 0),   # weather 3h old: beyond the 2h TTL
         ("f3", "JFK", "UA", "N9", ts(3, 8), 0),    # no JFK weather, unknown plane
         ("f4", "JFK", "AA", "N1", ts(2, 0), 1)],   # AA's day-2 rate arrived late (at 06:00)
        SPINE_SCHEMA)


def feature_rows(spark):
    weather = spark.createDataFrame(
        [("EWR", ts(2, 9), 1.0), ("EWR", ts(2, 10), 2.0), ("EWR", ts(2, 12), 3.0), ("EWR", ts(2, 11), 4.0),
         ("EWR", ts(2, 16), 999.0)],  # a future row for every spine row: never visible
        "origin string, event_time timestamp, temp double")
    rates = spark.createDataFrame(
        [("UA", ts(2), ts(2), 0.1), ("UA", ts(3), ts(3), 0.3), ("UA", ts(4), ts(4), 999.0),
         ("AA", ts(1), ts(1), 0.5), ("AA", ts(2), ts(2, 6), 0.7)],
        "carrier string, event_time timestamp, known_time timestamp, rate double")
    planes = spark.createDataFrame([("N1", 150.0), ("N2", 200.0)], "tailnum string, seats double")
    return {"weather": (WEATHER, weather), "rates": (RATES, rates), "planes": (PLANES, planes)}


def test_joins_each_table_as_of_the_spine_time_with_its_ttl(spark):
    got = point_in_time_join(spine(spark), feature_rows(spark), spine_time="t").select(
        "id", "label", "temp", "weather_found", "weather_event_time", "rate", "rates_found", "seats", "planes_found")
    expected = spark.createDataFrame(
        [("f1", 1, 2.0, True, ts(2, 10), 0.1, True, 150.0, True),
         ("f2", 0, None, False, None, 0.7, True, 200.0, True),
         ("f3", 0, None, False, None, 0.3, True, None, False),
         ("f4", 1, None, False, None, 0.5, True, 150.0, True)],
        "id string, label int, temp double, weather_found boolean, weather_event_time timestamp, "
        "rate double, rates_found boolean, seats double, planes_found boolean")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_no_feature_row_from_after_the_spine_time_is_ever_used(spark):
    joined = point_in_time_join(spine(spark), feature_rows(spark), spine_time="t")
    assert joined.where("temp = 999 OR rate = 999").count() == 0
    assert joined.where("weather_event_time > t OR rates_event_time > t").count() == 0
    assert joined.count() == 4


def test_time_bounds_are_pushed_down_to_the_delta_scan(spark, tmp_path):
    path = str(tmp_path / "weather")
    weather = feature_rows(spark)["weather"][1]
    weather.write.format("delta").save(path)
    rows, _ = read_pinned(spark, "weather", path)
    spark.conf.set("spark.sql.maxMetadataStringLength", "10000")  # show the scan's filters in full
    try:
        bounded = within_time_bounds(rows, WEATHER, (int(ts(2, 12).timestamp()), int(ts(2, 15).timestamp())))
        assert sorted(r.temp for r in bounded.collect()) == [2.0, 3.0, 4.0]  # 10:00 .. 15:00 (TTL 2h)
        plan = bounded._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.unset("spark.sql.maxMetadataStringLength")
    pushed = re.search(r"PushedFilters: \[([^\]]*)\]", plan)
    assert pushed and "GreaterThanOrEqual(event_time" in pushed.group(1) and "LessThanOrEqual(event_time" in pushed.group(1), plan


def test_retrieval_from_a_pinned_version_ignores_rows_written_later(spark, tmp_path):
    path = str(tmp_path / "rates")
    tables = feature_rows(spark)
    tables["rates"][1].where("carrier = 'UA'").write.format("delta").save(path)
    spark.createDataFrame([("UA", ts(3, 1), ts(3, 1), 0.9)], "carrier string, event_time timestamp, known_time timestamp, rate double") \
        .write.format("delta").mode("append").save(path)

    def rates_at(version):
        rows, _ = read_pinned(spark, "rates", path, version)
        joined = point_in_time_join(spine(spark).where("id = 'f3'"), {"rates": (RATES, rows)}, spine_time="t")
        return joined.select("rate").head()[0]

    assert (rates_at(0), rates_at(1)) == (0.3, 0.9)
