from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakeforge.config import SourceSettings
from lakeforge.errors import IngestError
from lakeforge.ingest import commit_source, stage_source
from lakeforge.tables import latest_version

SOURCE = SourceSettings(path="planes/*.csv", columns={"tailnum": "string", "year": "int", "seats": "int"},
                        max_rejected_fraction=0.5)
GOOD = "tailnum,year,seats,extra\nN1,2004,55,x\nN2,NA,182,y\nN3,1998,,z\n"


def write(landing: Path, name: str, text: str) -> Path:
    path = landing / "planes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ingest(spark, landing: Path, tables: Path, source=SOURCE, batch_id="b1"):
    staged = stage_source(spark, "planes", source, str(landing / source.path), batch_id, str(tables / "planes"),
                          str(tables / "planes_quarantine"))
    return commit_source(staged)


def test_good_file_is_typed_and_reconciled(spark, tmp_path):
    write(tmp_path / "landing", "a.csv", GOOD)
    report = ingest(spark, tmp_path / "landing", tmp_path / "t")
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (3, 3, 0)
    got = spark.read.format("delta").load(str(tmp_path / "t" / "planes")).select("tailnum", "year", "seats")
    expected = spark.createDataFrame([("N1", 2004, 55), ("N2", None, 182), ("N3", 1998, None)], "tailnum string, year int, seats int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_unparsable_values_are_quarantined_with_reason(spark, tmp_path):
    path = write(tmp_path / "landing", "a.csv", "tailnum,year,seats\nN1,2004,55\nN2,19x8,182\nN3,1998,lots\nN4\n")
    report = ingest(spark, tmp_path / "landing", tmp_path / "t", source=SOURCE.model_copy(update={"max_rejected_fraction": 1.0}))
    assert report.rows_read == report.rows_written + report.rows_quarantined == 4
    assert report.rows_written == 1
    quarantined = spark.read.format("delta").load(str(tmp_path / "t" / "planes_quarantine"))
    reasons = {tuple(r["_reasons"]) for r in quarantined.collect()}
    assert reasons == {("year: cannot parse '19x8' as int",), ("seats: cannot parse 'lots' as int",), ("malformed row",)}
    assert {r["_source_file"] for r in quarantined.collect()} == {str(path)}


def test_too_many_bad_rows_fail_naming_file_column_and_value_and_keep_the_table(spark, tmp_path):
    landing = tmp_path / "landing"
    write(landing, "a.csv", GOOD)
    ingest(spark, landing, tmp_path / "t")
    version = latest_version(spark, str(tmp_path / "t" / "planes"))
    bad = write(landing, "b.csv", "tailnum,year,seats\nN9,abc,1\nN8,def,2\nN7,ghi,3\nN6,jkl,4\n")
    with pytest.raises(IngestError) as error:
        ingest(spark, landing, tmp_path / "t", batch_id="b2")
    message = str(error.value)
    assert str(bad) in message and "year: cannot parse 'abc' as int" in message and "nothing was written" in message
    assert latest_version(spark, str(tmp_path / "t" / "planes")) == version
    assert spark.read.format("delta").load(str(tmp_path / "t" / "planes")).count() == 3


def test_missing_column_fails_naming_file_and_column(spark, tmp_path):
    landing = tmp_path / "landing"
    write(landing, "a.csv", GOOD)
    ingest(spark, landing, tmp_path / "t")
    version = latest_version(spark, str(tmp_path / "t" / "planes"))
    bad = write(landing, "b.csv", "tailnum,year\nN9,2001\n")
    with pytest.raises(IngestError, match=rf"{bad}: missing column\(s\) seats"):
        ingest(spark, landing, tmp_path / "t", batch_id="b2")
    assert latest_version(spark, str(tmp_path / "t" / "planes")) == version


def test_reingesting_a_batch_replaces_it_and_keeps_other_batches(spark, tmp_path):
    landing = tmp_path / "landing"
    write(landing, "a.csv", GOOD)
    ingest(spark, landing, tmp_path / "t", batch_id="b1")
    ingest(spark, landing, tmp_path / "t", batch_id="b2")
    report = ingest(spark, landing, tmp_path / "t", batch_id="b1")
    table = spark.read.format("delta").load(str(tmp_path / "t" / "planes"))
    assert report.rows_written == 3
    assert {r["_batch_id"]: r["count"] for r in table.groupBy("_batch_id").count().collect()} == {"b1": 3, "b2": 3}


def test_no_files_is_an_error(spark, tmp_path):
    with pytest.raises(IngestError, match=r"no files match .*planes/\*\.csv"):
        ingest(spark, tmp_path / "landing", tmp_path / "t")


def test_values_the_csv_reader_cannot_type_are_typed_from_their_text_like_the_rest(spark, tmp_path):
    source = SourceSettings(path="planes/*.csv", null_values=["", "NA", "NULL"],
                            columns={"tailnum": "string", "year": "int", "seen": "timestamp", "seats": "double"})
    write(tmp_path / "landing", "a.csv", "tailnum,year,seen,seats\n"
          "N1,2004,2013-01-01T05:00:00Z,55\n"  # the reader types this row itself
          "NULL,NULL,NULL,NULL\n"              # a null token other than the reader's own
          "N3, 1998 ,2013-01-02 06:30:00,1e2\n"  # spaces around an int: try_cast trims them
          '"",2001,NA,\n')                     # a quoted empty string is a null token too
    report = ingest(spark, tmp_path / "landing", tmp_path / "t", source=source)
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (4, 4, 0)
    got = spark.read.format("delta").load(str(tmp_path / "t" / "planes")).select(
        "tailnum", "year", F.date_format("seen", "yyyy-MM-dd HH:mm").alias("seen"), "seats")
    expected = spark.createDataFrame(
        [("N1", 2004, "2013-01-01 05:00", 55.0), (None, None, None, None), ("N3", 1998, "2013-01-02 06:30", 100.0),
         (None, 2001, None, None)], "tailnum string, year int, seen string, seats double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_files_with_their_columns_in_other_orders_are_read_by_name(spark, tmp_path):
    write(tmp_path / "landing", "a.csv", "tailnum,year,seats\nN1,2004,55\n")
    other = write(tmp_path / "landing", "b.csv", "seats,tailnum,year\n182,N2,NA\nlots,N3,1998\n")
    report = ingest(spark, tmp_path / "landing", tmp_path / "t",
                    source=SOURCE.model_copy(update={"max_rejected_fraction": 1.0}))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (3, 2, 1)
    got = spark.read.format("delta").load(str(tmp_path / "t" / "planes")).select("tailnum", "year", "seats")
    expected = spark.createDataFrame([("N1", 2004, 55), ("N2", None, 182)], "tailnum string, year int, seats int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    quarantined = spark.read.format("delta").load(str(tmp_path / "t" / "planes_quarantine")).select(
        "_source_file", F.get_json_object("_raw", "$.tailnum").alias("tailnum"), "_reasons")
    expected = spark.createDataFrame([(str(other), "N3", ["seats: cannot parse 'lots' as int"])],
                                     "_source_file string, tailnum string, _reasons array<string>")
    assert_df_equality(quarantined, expected, ignore_nullable=True)
