from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakeforge.split import hash_split


def test_same_rows_every_time_and_expected_fraction(spark):
    ids = spark.range(100_000).select(F.format_string("id-%d", "id").alias("key"))
    first = hash_split(ids, "key", 0.2, seed=42)
    again = hash_split(ids.repartition(7), "key", 0.2, seed=42)
    assert_df_equality(first, again, ignore_row_order=True)
    share = first.where("is_validation").count() / 100_000
    assert abs(share - 0.2) < 0.01


def test_seed_changes_the_split(spark):
    ids = spark.range(10_000).select(F.col("id").cast("string").alias("key"))
    a = hash_split(ids, "key", 0.3, seed=1).where("is_validation")
    b = hash_split(ids, "key", 0.3, seed=2).where("is_validation")
    assert a.subtract(b).count() > 1000
