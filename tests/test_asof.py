import datetime as dt
import random

import pytest
from chispa import assert_df_equality

from lakeforge.asof import AsOfSide, asof_join

START = dt.datetime(2013, 1, 1)


def ts(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2013, 1, 1, hour, minute)


def brute_force_asof(left_rows, right_rows, max_age_seconds):
    """Reference: for each left row scan every right row; latest time wins, ties go to the larger value."""
    expected = []
    for left_id, key, left_time in left_rows:
        candidates = [(right_time, value) for right_key, right_time, value in right_rows
                      if right_key == key and dt.timedelta(0) <= left_time - right_time <= dt.timedelta(seconds=max_age_seconds)]
        best = max(candidates) if candidates else (None, None)
        expected.append((left_id, key, left_time, *best, bool(candidates)))
    return expected


def test_matches_a_brute_force_reference_on_random_rows(spark):
    rng = random.Random(7)
    minute = lambda: START + dt.timedelta(minutes=5 * rng.randrange(48))  # coarse grid: many equal times
    left_rows = [(i, rng.choice("abcd"), minute()) for i in range(120)]  # key d never appears on the right
    right_rows = [(rng.choice("abc"), minute(), float(i)) for i in range(90)]
    max_age = 40 * 60
    assert len({(k, t) for k, t, _ in right_rows}) < len(right_rows), "the sample must contain equal timestamps"

    left = spark.createDataFrame(left_rows, "id int, k string, t timestamp")
    right = spark.createDataFrame(right_rows, "k string, rt timestamp, v double")
    got = asof_join(left, [AsOfSide(right, time="rt", max_age_seconds=max_age, matched_flag="found")],
                    keys=["k"], left_time="t")
    expected = spark.createDataFrame(brute_force_asof(left_rows, right_rows, max_age),
                                     "id int, k string, t timestamp, rt timestamp, v double, found boolean")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert expected.where("not found").count() > 0 and expected.where("found").count() > 0


def test_ties_are_deterministic_and_never_from_the_future(spark):
    left = spark.createDataFrame([(1, "a", ts(5)), (2, "a", ts(6))], "id int, k string, t timestamp")
    right = spark.createDataFrame(
        [("a", ts(5), 1.0), ("a", ts(5), 2.0), ("a", ts(5, 1), 9.0), ("a", ts(6), 3.0)],
        "k string, rt timestamp, v double",
    )
    got = asof_join(left, [AsOfSide(right, time="rt", max_age_seconds=7200)], keys=["k"], left_time="t")
    expected = spark.createDataFrame(
        [(1, "a", ts(5), ts(5), 2.0), (2, "a", ts(6), ts(6), 3.0)], "id int, k string, t timestamp, rt timestamp, v double"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_rows_known_after_the_left_time_are_skipped(spark):
    left = spark.createDataFrame([(1, "a", ts(10)), (2, "a", ts(12))], "id int, k string, t timestamp")
    # The 09:00 row only arrived at 11:00: at 10:00 the 08:00 row was the latest one known.
    right = spark.createDataFrame(
        [("a", ts(8), ts(8), 1.0), ("a", ts(9), ts(11), 2.0)], "k string, rt timestamp, known timestamp, v double")
    got = asof_join(left, [AsOfSide(right, time="rt", max_age_seconds=4 * 3600, known_time="known")],
                    keys=["k"], left_time="t").select("id", "v")
    expected = spark.createDataFrame([(1, 1.0), (2, 2.0)], "id int, v double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_column_clash_is_refused(spark):
    left = spark.createDataFrame([(1, "a", ts(5), 0.0)], "id int, k string, t timestamp, v double")
    right = spark.createDataFrame([("a", ts(5), 1.0)], "k string, rt timestamp, v double")
    with pytest.raises(ValueError, match=r"\['v'\] already exist"):
        asof_join(left, [AsOfSide(right, time="rt", max_age_seconds=60)], keys=["k"], left_time="t")


def test_several_sides_with_different_max_ages_match_like_separate_joins(spark):
    rng = random.Random(11)
    minute = lambda: START + dt.timedelta(minutes=5 * rng.randrange(288))  # a day: several buckets of either width
    left_rows = [(i, rng.choice("abc"), minute()) for i in range(150)]
    short_rows = [(rng.choice("ab"), minute(), float(i)) for i in range(60)]
    long_rows = [(rng.choice("abc"), minute(), float(i)) for i in range(40)]
    left = spark.createDataFrame(left_rows, "id int, k string, t timestamp")
    short = AsOfSide(spark.createDataFrame(short_rows, "k string, st timestamp, sv double"), time="st",
                     max_age_seconds=30 * 60, matched_flag="short_found")
    long = AsOfSide(spark.createDataFrame(long_rows, "k string, lt timestamp, lv double"), time="lt",
                    max_age_seconds=6 * 3600, matched_flag="long_found")
    got = asof_join(left, [short, long], keys=["k"], left_time="t")
    by_id = {row[0]: row for row in brute_force_asof(left_rows, short_rows, 30 * 60)}
    expected_rows = [(*by_id[i][:3], st, sv, short_found, lt, lv, long_found)
                     for i, _, _, lt, lv, long_found in brute_force_asof(left_rows, long_rows, 6 * 3600)
                     for st, sv, short_found in [by_id[i][3:]]]
    expected = spark.createDataFrame(expected_rows, "id int, k string, t timestamp, st timestamp, sv double, "
                                     "short_found boolean, lt timestamp, lv double, long_found boolean")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert got.where("long_found and not short_found").count() > 0


def test_null_keys_and_times_never_match(spark):
    left = spark.createDataFrame([(1, None, ts(5)), (2, "a", None), (3, "a", ts(5))], "id int, k string, t timestamp")
    right = spark.createDataFrame([(None, ts(5), 1.0), ("a", None, 2.0), ("a", ts(4), 3.0)], "k string, rt timestamp, v double")
    got = asof_join(left, [AsOfSide(right, time="rt", max_age_seconds=7200, matched_flag="found")],
                    keys=["k"], left_time="t").select("id", "v", "found")
    expected = spark.createDataFrame([(1, None, False), (2, None, False), (3, 3.0, True)], "id int, v double, found boolean")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
