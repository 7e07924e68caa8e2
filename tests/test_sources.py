"""Sources: each format read, typed and quarantined into bronze; datetime formats; multiLine CSV; stable row ids."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakeforge.config import SourceSettings
from lakeforge.errors import IngestError
from lakeforge.ingest import commit_source, stage_source

PLANES = {"tailnum": "string", "seats": "bigint"}
NOT_NULL = [{"rule": "not_null", "column": "tailnum"}]


def source(fmt: str, path: str, columns=None, **settings) -> SourceSettings:
    return SourceSettings(format=fmt, path=path, columns=columns or PLANES, max_rejected_fraction=1.0, **settings)


def write(root: Path, name: str, text: str) -> Path:
    path = root / "landing" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ingest(spark, root: Path, settings: SourceSettings, batch_id: str | None = "b1"):
    """Stage and commit; returns the report, the bronze rows and the quarantined rows."""
    path = settings.path if settings.format == "delta" else str(root / "landing" / settings.path)
    tables = root / "tables"
    report = commit_source(stage_source(spark, "planes", settings, path, batch_id, str(tables / "bronze"),
                                        str(tables / "quarantine")))
    load = lambda table: spark.read.format("delta").load(str(tables / table))  # noqa: E731
    return report, load("bronze"), load("quarantine")


def reasons(quarantined) -> dict[str, list[str]]:
    """Quarantined rows by their tailnum (from their raw text): their reasons."""
    rows = quarantined.select(F.get_json_object("_raw", "$.tailnum").alias("t"), "_reasons").collect()
    return {r["t"]: list(r["_reasons"]) for r in rows}


def test_csv_round_trip_quarantines_unparsable_values(spark, tmp_path):
    path = write(tmp_path, "planes/a.csv", "seats,tailnum\n55,N1\nlots,N2\n")
    report, bronze, quarantined = ingest(spark, tmp_path, source("csv", "planes/*.csv"))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (2, 1, 1)
    assert_df_equality(bronze.select("tailnum", "seats", "_source_file"),
                       spark.createDataFrame([("N1", 55, str(path))], "tailnum string, seats bigint, _source_file string"),
                       ignore_nullable=True)
    assert reasons(quarantined) == {"N2": ["seats: cannot parse 'lots' as bigint"]}


def test_json_values_arrive_as_text_and_malformed_lines_are_quarantined(spark, tmp_path):
    write(tmp_path, "planes/a.json", '{"tailnum": "N1", "seats": 55, "extra": [1]}\n{"tailnum": "N2", "seats": "lots"}\n'
                                     '{"seats": "7"}\nnot json\n')
    report, bronze, quarantined = ingest(spark, tmp_path, source("json", "planes/*.json", quality=NOT_NULL))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (4, 1, 3)
    assert_df_equality(bronze.select("tailnum", "seats"),
                       spark.createDataFrame([("N1", 55)], "tailnum string, seats bigint"), ignore_nullable=True)
    assert sorted(r["_reasons"] for r in quarantined.collect()) == [
        ["malformed row: not a JSON object", "not_null(tailnum)"], ["not_null(tailnum)"],
        ["seats: cannot parse 'lots' as bigint"]]


def test_parquet_widens_stored_types_and_quarantines_rows_breaking_row_rules(spark, tmp_path):
    path = str(tmp_path / "landing" / "planes")
    spark.createDataFrame([("N1", 55), (None, 7)], "tailnum string, seats int").coalesce(1).write.parquet(path)
    report, bronze, quarantined = ingest(spark, tmp_path, source("parquet", "planes/*.parquet", quality=NOT_NULL))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (2, 1, 1)
    assert_df_equality(bronze.select("tailnum", "seats"),
                       spark.createDataFrame([("N1", 55)], "tailnum string, seats bigint"), ignore_nullable=True)
    assert [(r["_raw"], list(r["_reasons"])) for r in quarantined.collect()] == [('{"seats":7}', ["not_null(tailnum)"])]


def test_parquet_type_that_cannot_be_cast_safely_fails_naming_file_column_and_types(spark, tmp_path):
    spark.createDataFrame([("N1", 55)], "tailnum string, seats int").write.parquet(str(tmp_path / "landing" / "good"))
    bad = tmp_path / "landing" / "bad"
    spark.createDataFrame([("N2", "55")], "tailnum string, seats string").coalesce(1).write.parquet(str(bad))
    bad_file = next(bad.glob("*.parquet"))
    with pytest.raises(IngestError, match=rf"{bad_file}: column seats is stored as string, which cannot be read as int"):
        ingest(spark, tmp_path, source("parquet", "*/*.parquet", {"tailnum": "string", "seats": "int"}))
    with pytest.raises(IngestError, match=r"good/.*\.parquet: missing column\(s\) year required by source 'planes'"):
        ingest(spark, tmp_path, source("parquet", "good/*.parquet", {"tailnum": "string", "year": "int"}))


def test_delta_table_is_read_at_its_version_and_checked_like_parquet(spark, tmp_path):
    table = str(tmp_path / "upstream")
    spark.createDataFrame([("N1", 55), (None, 7)], "tailnum string, seats int").write.format("delta").save(table)
    report, bronze, quarantined = ingest(spark, tmp_path, source("delta", table, quality=NOT_NULL))
    assert (report.rows_read, report.rows_written, report.rows_quarantined, report.files) == (2, 1, 1, (table,))
    assert_df_equality(bronze.select("tailnum", "seats", "_source_file"),
                       spark.createDataFrame([("N1", 55, table)], "tailnum string, seats bigint, _source_file string"),
                       ignore_nullable=True)
    assert reasons(quarantined) == {None: ["not_null(tailnum)"]}
    with pytest.raises(IngestError, match=rf"Delta table {table}: column tailnum is stored as string, which cannot "
                                          r"be read as double"):
        ingest(spark, tmp_path, source("delta", table, {"tailnum": "double"}), batch_id="b2")
    with pytest.raises(IngestError, match="is not a Delta table"):
        ingest(spark, tmp_path, source("delta", str(tmp_path / "nothing")), batch_id="b2")


TIMES = {"tailnum": "string", "iso": "timestamp", "us": {"type": "timestamp", "format": "M/d/yyyy H:mm:ss"},
         "day": {"type": "date", "format": "dd.MM.yyyy"}, "secs": {"type": "timestamp", "format": "epoch_seconds"},
         "millis": {"type": "timestamp", "format": "epoch_millis"}}


def test_timestamp_formats_parse_text_and_quarantine_what_they_cannot_parse(spark, tmp_path):
    write(tmp_path, "t/a.csv", "tailnum,iso,us,day,secs,millis\n"
          "N1,2013-01-01T05:00:00Z,1/2/2013 5:06:07,03.01.2013,1357016400,1357016400123\n"
          "N2,NA,NA,,NA,\n"
          "N3,soon,13/45/2013 5:06:07,3 Jan,12x,1e99999\n")
    report, bronze, quarantined = ingest(spark, tmp_path, source("csv", "t/*.csv", TIMES))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (3, 2, 1)
    expected = spark.createDataFrame([
        ("N1", datetime(2013, 1, 1, 5), datetime(2013, 1, 2, 5, 6, 7), datetime(2013, 1, 3).date(),
         datetime(2013, 1, 1, 5), datetime(2013, 1, 1, 5, 0, 0, 123000)),
        ("N2", None, None, None, None, None)], "tailnum string, iso timestamp, us timestamp, day date, secs timestamp, "
                                               "millis timestamp")
    assert_df_equality(bronze.select(*TIMES), expected, ignore_row_order=True, ignore_nullable=True)
    assert reasons(quarantined) == {"N3": [
        "iso: cannot parse 'soon' as timestamp", "us: cannot parse '13/45/2013 5:06:07' as timestamp",
        "day: cannot parse '3 Jan' as date", "secs: cannot parse '12x' as timestamp",
        "millis: cannot parse '1e99999' as timestamp"]}


def test_epoch_formats_read_stored_numbers(spark, tmp_path):
    path = str(tmp_path / "landing" / "t")
    spark.createDataFrame([("N1", 1357016400, 1357016400123)], "tailnum string, secs int, millis bigint").write.parquet(path)
    columns = {"tailnum": "string", "secs": TIMES["secs"], "millis": TIMES["millis"]}
    _, bronze, _ = ingest(spark, tmp_path, source("parquet", "t/*.parquet", columns))
    assert bronze.select("secs", "millis").head().asDict() == {
        "secs": datetime(2013, 1, 1, 5), "millis": datetime(2013, 1, 1, 5, 0, 0, 123000)}


MULTILINE = 'tailnum,note,seats\nN1,"two\nlines",55\nN2,plain,7\nN3,"last\n"\n'
NOTES = {"tailnum": "string", "note": "string", "seats": "int"}


def test_quoted_newlines_are_one_record_with_multiline(spark, tmp_path):
    write(tmp_path, "p/a.csv", MULTILINE.replace('"last\n"\n', '"x",8\n'))
    report, bronze, _ = ingest(spark, tmp_path, source("csv", "p/*.csv", NOTES, options={"multiLine": True}))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (3, 3, 0)
    expected = spark.createDataFrame([("N1", "two\nlines", 55), ("N2", "plain", 7), ("N3", "x", 8)],
                                     "tailnum string, note string, seats int")
    assert_df_equality(bronze.select(*NOTES), expected, ignore_row_order=True, ignore_nullable=True)


def test_quoted_newlines_without_multiline_quarantine_the_file_naming_the_option(spark, tmp_path):
    write(tmp_path, "p/a.csv", MULTILINE)
    clean = write(tmp_path, "p/b.csv", "tailnum,note,seats\nN4,ok,1\n")
    report, bronze, quarantined = ingest(spark, tmp_path, source("csv", "p/*.csv", NOTES))
    assert report.rows_read == report.rows_written + report.rows_quarantined
    assert report.rows_written == 1 and bronze.select("_source_file", "tailnum").collect() == [(str(clean), "N4")]
    hint = "(set sources.planes.options.multiLine: true)"
    got = {reason for r in quarantined.collect() for reason in r["_reasons"]}
    assert got == {f"malformed row: unbalanced quote, a quoted field may span lines {hint}",
                   f"file has an unbalanced quote, its rows may be split across lines {hint}"}


def test_row_ids_are_unique_and_stable_when_the_same_files_are_reingested(spark, tmp_path):
    write(tmp_path, "planes/a.csv", "tailnum,seats\n" + "".join(f"N{i},{i}\n" for i in range(50)) + "N50,lots\n")
    write(tmp_path, "planes/b.csv", "tailnum,seats\nN1,1\n")
    settings = source("csv", "planes/*.csv")
    ids = lambda frame: sorted((r["_row_id"], r["_source_file"]) for r in frame.collect())  # noqa: E731
    first, bronze, quarantined = ingest(spark, tmp_path, settings, batch_id=None)
    before = ids(bronze), ids(quarantined)
    assert len({i for i, _ in before[0] + before[1]}) == first.rows_read == 52
    assert all(i.startswith(f"{first.batch_id}/") for i, _ in before[0])
    again, bronze, quarantined = ingest(spark, tmp_path, settings, batch_id=None)
    assert again.batch_id == first.batch_id and (ids(bronze), ids(quarantined)) == before
