"""Bad values in landing files: NaN and infinity, invalid UTF-8, a byte order mark, quoted newlines, duplicate
header names and huge values are quarantined or refused with a message naming the culprit, never stored
silently; counts reconcile and a refused file changes no table. Real Spark and Delta, through `ingest.run`."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakeforge import ingest
from lakeforge.errors import IngestError
from lakeforge.sources.rows import quoted
from lakeforge.tables import latest_version

from conftest import flights_config

COLUMNS = {"tailnum": "string", "seats": "double"}
TABLES = ["bronze_planes", "bronze_planes_quarantine", "ingested_files"]
NOT_FINITE = "is not a finite number (set allow_nan: true on column seats to keep NaN and infinity)"
ENCODING = "set sources.planes.options.encoding to the file's encoding (e.g. ISO-8859-1) or fix the file"


def planes(tmp_path, files: dict[str, bytes], columns=None, **settings):
    """A config whose one source, planes, reads `files` (name -> bytes) from landing/planes/."""
    fmt = settings.get("format", "csv")
    source = {"path": f"planes/*.{fmt}", "columns": columns or COLUMNS, "max_rejected_fraction": 1.0, **settings}
    config = flights_config(tmp_path, **{"features": {}, "dataset.spine.source": "planes", "sources": {"planes": source}})
    for name, data in files.items():
        path = Path(config.landing_dir) / "planes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return config


def ingested(spark, config):
    """Ingest; the result, the bronze rows and the quarantined rows, after checking nothing was dropped."""
    result = ingest.run(spark, config)
    load = lambda table: spark.read.format("delta").load(config.table_path(table))  # noqa: E731
    bronze, quarantined = load("bronze_planes"), load("bronze_planes_quarantine")
    assert result.rows_in == bronze.count() + quarantined.count()
    assert result.details["planes"] == (f"{result.rows_in} read = {bronze.count()} written + "
                                        f"{quarantined.count()} quarantined")
    return result, bronze, quarantined


def reasons(quarantined) -> dict[str, list[str]]:
    """Quarantined rows by their tailnum (from their raw text): their reasons."""
    rows = quarantined.select(F.get_json_object("_raw", "$.tailnum").alias("t"), "_reasons").collect()
    return {r["t"]: list(r["_reasons"]) for r in rows}


def versions(spark, config) -> dict[str, int | None]:
    return {t: latest_version(spark, config.table_path(t)) if DeltaTable.isDeltaTable(spark, config.table_path(t))
            else None for t in TABLES}


def refused(spark, config, file: str, data: bytes) -> str:
    """Land `file` after a first clean ingest; the next ingest must fail and change no table: its message."""
    ingest.run(spark, config)
    before = versions(spark, config)
    (Path(config.landing_dir) / "planes" / file).write_bytes(data)
    with pytest.raises(IngestError) as error:
        ingest.run(spark, config)
    assert versions(spark, config) == before
    return str(error.value)


NON_FINITE_CSV = b"tailnum,seats\nN1,NaN\nN2,inf\nN3,-inf\nN4,Infinity\nN5,-Infinity\nN6,1e999\nN7,150\n"


def test_nan_and_infinity_in_a_double_column_are_quarantined_naming_the_column(spark, tmp_path):
    result, bronze, quarantined = ingested(spark, planes(tmp_path, {"a.csv": NON_FINITE_CSV}))
    assert (result.rows_in, result.rows_out) == (7, 1)
    assert_df_equality(bronze.select(*COLUMNS), spark.createDataFrame([("N7", 150.0)], "tailnum string, seats double"),
                       ignore_nullable=True)
    assert reasons(quarantined) == {tailnum: [f"seats: '{text}' {NOT_FINITE}"] for tailnum, text in [
        ("N1", "NaN"), ("N2", "inf"), ("N3", "-inf"), ("N4", "Infinity"), ("N5", "-Infinity"), ("N6", "1e999")]}


def test_nan_and_infinity_are_kept_in_a_column_that_allows_them(spark, tmp_path):
    columns = {"tailnum": "string", "seats": {"type": "double", "allow_nan": True}}
    result, bronze, quarantined = ingested(spark, planes(tmp_path, {"a.csv": NON_FINITE_CSV}, columns))
    assert (result.rows_in, result.rows_out, quarantined.count()) == (7, 7, 0)
    nan, inf = float("nan"), float("inf")
    expected = spark.createDataFrame([("N1", nan), ("N2", inf), ("N3", -inf), ("N4", inf), ("N5", -inf), ("N6", inf),
                                      ("N7", 150.0)], "tailnum string, seats double")
    assert_df_equality(bronze.select(*COLUMNS), expected, ignore_row_order=True, ignore_nullable=True,
                       allow_nan_equality=True)


def test_nan_and_infinity_in_json_numbers_are_quarantined_too(spark, tmp_path):
    lines = b'{"tailnum": "N1", "seats": NaN}\n{"tailnum": "N2", "seats": "-Infinity"}\n{"tailnum": "N3", "seats": 9}\n'
    result, bronze, quarantined = ingested(spark, planes(tmp_path, {"a.json": lines}, format="json"))
    assert (result.rows_in, result.rows_out) == (3, 1) and bronze.select("tailnum").collect() == [("N3",)]
    assert reasons(quarantined) == {"N1": [f"seats: 'NaN' {NOT_FINITE}"], "N2": [f"seats: '-Infinity' {NOT_FINITE}"]}


def test_a_latin1_byte_past_the_first_8kb_quarantines_its_file_with_the_byte_offset(spark, tmp_path):
    bad = b"tailnum,seats\n" + b"N0,1\n" * 3000 + b"Caf\xe9,2\nN9,3\n"  # the byte at 14 + 15000 + 3
    config = planes(tmp_path, {"a.csv": bad, "b.csv": b"tailnum,seats\nN1,1\n"})
    result, bronze, quarantined = ingested(spark, config)
    assert (result.rows_in, result.rows_out) == (3003, 1)
    assert bronze.select("tailnum", "_source_file").collect() == [("N1", f"{config.landing_dir}/planes/b.csv")]
    expected = f"file is not valid UTF-8: byte 0xE9 at byte offset 15017 (line 3002); {ENCODING}"
    got = quarantined.groupBy("_source_file", "_reasons").count().collect()
    assert [tuple(r) for r in got] == [(f"{config.landing_dir}/planes/a.csv", [expected], 3002)]


def test_a_latin1_byte_in_the_first_8kb_quarantines_its_file_and_a_json_line_keeps_its_own_reason(spark, tmp_path):
    config = planes(tmp_path, {"a.csv": b"tailnum,seats\nCaf\xe9,2\nN9,3\n"})
    result, bronze, quarantined = ingested(spark, config)
    assert (result.rows_in, result.rows_out) == (2, 0)
    reason = f"file is not valid UTF-8: byte 0xE9 at byte offset 17 (line 2); {ENCODING}"
    assert reasons(quarantined) == {"Caf\ufffd": [reason], "N9": [reason]}

    config = planes(tmp_path / "json", {"a.json": b'{"tailnum": "N1", "seats": 1}\n{"tailnum": "Caf\xe9"}\n'},
                    format="json")
    result, bronze, quarantined = ingested(spark, config)
    assert (result.rows_in, result.rows_out) == (2, 0)
    reason = f"file is not valid UTF-8: byte 0xE9 at byte offset 46 (line 2); {ENCODING}"
    assert sorted(list(r["_reasons"]) for r in quarantined.collect()) == [
        [reason], ["malformed row: not a JSON object", reason]]


def test_a_latin1_byte_in_the_header_refuses_the_file_and_changes_no_table(spark, tmp_path):
    config = planes(tmp_path, {"a.csv": b"tailnum,seats\nN1,1\n"})
    message = refused(spark, config, "b.csv", b"tailnum,s\xe9ats,seats\nN2,2,3\n")
    assert message == (f"{config.landing_dir}/planes/b.csv: the header is not valid UTF-8: byte 0xE9 at byte offset 9 "
                       f"(line 1); {ENCODING}")


def test_a_byte_order_mark_is_dropped_from_the_header(spark, tmp_path):
    config = planes(tmp_path, {"a.csv": b"\xef\xbb\xbfseats,tailnum\r\n1,N1\r\n2,N2\r\n"})
    result, bronze, quarantined = ingested(spark, config)
    assert (result.rows_in, result.rows_out, quarantined.count()) == (2, 2, 0)
    assert_df_equality(bronze.select(*COLUMNS), spark.createDataFrame([("N1", 1.0), ("N2", 2.0)], "tailnum string, seats double"),
                       ignore_row_order=True, ignore_nullable=True)


EMBEDDED = b'tailnum,note,seats\nN1,"two\nlines",1\nN2,plain,2\n'
NOTES = {"tailnum": "string", "note": "string", "seats": "double"}


def test_a_quoted_newline_is_one_record_with_multiline_else_its_file_is_quarantined_naming_the_option(spark, tmp_path):
    result, _, quarantined = ingested(spark, planes(tmp_path / "plain", {"a.csv": EMBEDDED}, NOTES))
    assert (result.rows_in, result.rows_out) == (3, 0)
    hint = "(set sources.planes.options.multiLine: true)"
    assert {reason for r in quarantined.collect() for reason in r["_reasons"]} == {
        f"malformed row: unbalanced quote, a quoted field may span lines {hint}",
        f"file has an unbalanced quote, its rows may be split across lines {hint}"}

    result, bronze, quarantined = ingested(spark, planes(tmp_path / "multi", {"a.csv": EMBEDDED}, NOTES,
                                                         options={"multiLine": True}))
    assert (result.rows_in, result.rows_out, quarantined.count()) == (2, 2, 0)
    expected = spark.createDataFrame([("N1", "two\nlines", 1.0), ("N2", "plain", 2.0)],
                                     "tailnum string, note string, seats double")
    assert_df_equality(bronze.select(*NOTES), expected, ignore_row_order=True, ignore_nullable=True)


def test_a_column_named_twice_in_the_header_refuses_the_file_and_other_names_may_repeat(spark, tmp_path):
    config = planes(tmp_path, {"a.csv": b"tailnum,note,note,seats,_corrupt_record\nN1,x,y,1,z\n"})
    message = refused(spark, config, "b.csv", b"tailnum,seats,seats\nN2,2,3\n")
    assert message == (f"{config.landing_dir}/planes/b.csv: column(s) seats appear more than once in the header, so "
                       "which one source 'planes' reads is ambiguous (header has: 'tailnum, seats, seats'); rename or "
                       "drop the copies")
    bronze = spark.read.format("delta").load(config.table_path("bronze_planes"))
    assert bronze.select(*COLUMNS).collect() == [("N1", 1.0)]  # the first file: its extra names repeat, unread


def test_a_5mb_value_is_cut_to_200_characters_in_the_reason_and_the_error(spark, tmp_path):
    huge = "9" * (5 << 20) + "x"
    files = {"a.csv": f"tailnum,seats\nN1,{huge}\nN2,3\n".encode()}
    shown = f"seats: cannot parse '{huge[:200]}...' (5242881 characters) as double"
    result, _, quarantined = ingested(spark, planes(tmp_path / "kept", files))
    assert (result.rows_in, result.rows_out) == (2, 1) and reasons(quarantined) == {"N1": [shown]}

    config = planes(tmp_path / "refused", files, max_rejected_fraction=0.1)
    with pytest.raises(IngestError) as error:
        ingest.run(spark, config)
    message = str(error.value)
    assert f"{config.landing_dir}/planes/a.csv: {shown} (1 rows)" in message and len(message) < 1000
    assert not DeltaTable.isDeltaTable(spark, config.table_path("bronze_planes"))


def test_a_value_of_200_characters_is_quoted_whole():
    assert quoted("x" * 200) == f"'{'x' * 200}'"
    assert re.fullmatch(r"'x{200}\.\.\.' \(201 characters\)", quoted("x" * 201))
