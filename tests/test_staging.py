"""Staged Delta writes: invisible until committed, replace only their batch, refuse what they cannot replace."""
from __future__ import annotations

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakeforge.errors import IngestError
from lakeforge.staging import stage_batch
from lakeforge.tables import latest_version


def rows(spark, *values):
    return spark.createDataFrame([(v, v * 10) for v in values], "id int, value int")


def table_rows(spark, path):
    return spark.read.format("delta").load(path).select("_batch_id", "id", "value")


def test_staged_rows_are_invisible_until_commit_which_replaces_only_their_batch(spark, tmp_path):
    path = str(tmp_path / "t")
    stage_batch(rows(spark, 1, 2), path, "a").commit()
    stage_batch(rows(spark, 3), path, "b").commit()

    staged = stage_batch(rows(spark, 4, 5, 6), path, "a")
    assert staged.rows == 3
    assert latest_version(spark, path) == 1
    assert_df_equality(staged.frame().select("id"), spark.createDataFrame([(4,), (5,), (6,)], "id int"),
                       ignore_row_order=True, ignore_nullable=True)
    assert table_rows(spark, path).where("_batch_id = 'a'").count() == 2

    assert staged.commit() == 2
    expected = spark.createDataFrame([("a", 4, 40), ("a", 5, 50), ("a", 6, 60), ("b", 3, 30)], "_batch_id string, id int, value int")
    assert_df_equality(table_rows(spark, path), expected, ignore_row_order=True, ignore_nullable=True)


def test_abort_deletes_the_staged_files_and_commits_nothing(spark, tmp_path):
    path = str(tmp_path / "t")
    stage_batch(rows(spark, 1), path, "a").commit()
    files_before = sorted(p.name for p in (tmp_path / "t").glob("*.parquet"))
    staged = stage_batch(rows(spark, 7, 8), path, "b")
    assert len(list((tmp_path / "t").glob("*.parquet"))) > len(files_before)
    staged.abort()
    staged.abort()  # idempotent
    assert sorted(p.name for p in (tmp_path / "t").glob("*.parquet")) == files_before
    assert latest_version(spark, path) == 0


def test_an_empty_stage_creates_the_table_without_a_job(spark, tmp_path):
    path = str(tmp_path / "t")
    context = spark.sparkContext
    context.setJobGroup("staging-empty", "stage an empty batch")
    try:
        staged = stage_batch(rows(spark), path, "a", known_empty=True)
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    assert context.statusTracker().getJobIdsForGroup("staging-empty") == []
    assert staged.rows == 0 and staged.commit() == 0
    assert DeltaTable.isDeltaTable(spark, path) and table_rows(spark, path).count() == 0
    assert stage_batch(rows(spark), path, "a", known_empty=True).commit() is None  # nothing to change


def test_other_columns_are_refused_naming_them(spark, tmp_path):
    path = str(tmp_path / "t")
    stage_batch(rows(spark, 1), path, "a").commit()
    other = spark.createDataFrame([(1, "x")], "id int, value string")
    with pytest.raises(IngestError, match=r"value \(string here, int in the table\)"):
        stage_batch(other, path, "b")
    reordered = rows(spark, 2).select("value", "id")
    stage_batch(reordered, path, "b").commit()
    assert table_rows(spark, path).where("_batch_id = 'b'").select("id", "value").head().asDict() == {"id": 2, "value": 20}


def test_a_file_mixing_batches_is_not_silently_replaced(spark, tmp_path):
    path = str(tmp_path / "t")
    mixed = rows(spark, 1, 2).withColumn("_batch_id", F.when(F.col("id") == 1, "a").otherwise("b"))
    mixed.withColumn("_ingested_at", F.current_timestamp()).coalesce(1).write.format("delta").save(path)
    with pytest.raises(IngestError, match="may hold batch a besides other rows"):
        stage_batch(rows(spark, 3), path, "a")
    assert latest_version(spark, path) == 0
