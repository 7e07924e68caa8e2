"""Quality rules inside ingest: quarantine by rule, one Spark job per source, fail commits nothing."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import mlflow
import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakeforge import ingest
from lakeforge.config import SourceSettings
from lakeforge.errors import IngestError
from lakeforge.quality.rules import RuleContext
from lakeforge.quality.runner import QualityError, evaluate_scan
from lakeforge.tables import latest_version
from lakeforge.tracking import configure_mlflow

from conftest import flights_config

RULES = [
    {"rule": "not_null", "column": "tailnum"},
    {"rule": "regex", "column": "tailnum", "pattern": "^N[0-9]+$", "severity": "warn"},
    {"rule": "range", "column": "seats", "min": 1, "max": 500, "severity": "warn"},
    {"rule": "allowed_values", "column": "engines", "values": [1, 2, 4], "severity": "warn"},
    {"rule": "completeness", "column": "seats", "min_ratio": 0.5},
]
SOURCE = SourceSettings(path="planes/*.csv", columns={"tailnum": "string", "seats": "int", "engines": "int"},
                        max_rejected_fraction=1.0, quality=RULES)
GOOD = "tailnum,seats,engines\nN1,100,2\nN2,,2\nN3,180,4\n"
BAD = "tailnum,seats,engines\nN1,100,2\nX2,900,2\nN3,lots,3\n,50,1\n"


def write(landing: str, name: str, text: str) -> Path:
    path = Path(landing) / "planes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_rows_breaking_row_rules_are_quarantined_with_rule_names_and_reconciled(spark, tmp_path):
    path = write(tmp_path / "landing", "a.csv", BAD)
    staged = ingest.stage_source(spark, "planes", SOURCE, str(tmp_path / "landing" / SOURCE.path), "b1",
                                 str(tmp_path / "planes"), str(tmp_path / "quarantine"))
    report = ingest.commit_source(staged)
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (4, 1, 3)
    quarantined = spark.read.format("delta").load(str(tmp_path / "quarantine")).select(
        F.get_json_object("_raw", "$.tailnum").alias("tailnum"), "_reasons", "_source_file", "_batch_id")
    expected = spark.createDataFrame([
        ("X2", ["regex(tailnum)", "range(seats)"], str(path), "b1"),
        ("N3", ["seats: cannot parse 'lots' as int", "allowed_values(engines)"], str(path), "b1"),
        (None, ["not_null(tailnum)"], str(path), "b1"),
    ], "tailnum string, _reasons array<string>, _source_file string, _batch_id string")
    assert_df_equality(quarantined, expected, ignore_row_order=True, ignore_nullable=True)


def _jobs_to_stage(spark, tmp_path, group: str):
    context = spark.sparkContext
    context.setJobGroup(group, "stage_source")
    try:
        staged = ingest.stage_source(spark, "planes", SOURCE, str(tmp_path / "landing" / SOURCE.path), "b1",
                                     str(tmp_path / "planes"), str(tmp_path / "quarantine"))
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    staged.abort()
    return len(context.statusTracker().getJobIdsForGroup(group)), staged


def test_parsing_all_column_rules_and_writing_a_clean_source_take_one_spark_job(spark, tmp_path):
    write(tmp_path / "landing", "b.csv", GOOD)
    jobs, staged = _jobs_to_stage(spark, tmp_path, "quality-one-scan-clean")
    assert jobs == 1
    assert (staged.rows_read, staged.rows_quarantined, staged.good.rows) == (3, 0, 3)
    ctx = RuleContext("planes", datetime(2014, 1, 1), staged.rows_read, staged.good.rows)
    completeness = [r for r in evaluate_scan(SOURCE.quality, staged.scan, ctx) if r.metric == "completeness"]
    assert [(r.rule, r.value) for r in completeness] == [("completeness(seats)", 2 / 3)]  # measured in that same job


def test_quarantined_rows_take_one_more_job_and_aborted_stages_leave_no_table(spark, tmp_path):
    write(tmp_path / "landing", "a.csv", BAD)
    write(tmp_path / "landing", "b.csv", GOOD)
    jobs, staged = _jobs_to_stage(spark, tmp_path, "quality-one-scan-bad")
    assert jobs == 2
    assert (staged.rows_read, staged.rows_quarantined, staged.good.rows, staged.quarantined.rows) == (7, 3, 4, 3)
    assert not list((tmp_path / "planes").glob("*.parquet")) and not list((tmp_path / "quarantine").glob("*.parquet"))
    assert not DeltaTable.isDeltaTable(spark, str(tmp_path / "planes"))


PLANES = {"path": "planes/*.csv", "columns": {"tailnum": "string", "seats": "int"}, "max_rejected_fraction": 0.5,
          "quality": [{"rule": "unique", "columns": ["tailnum"]},
                      {"rule": "range", "column": "seats", "min": 1, "max": 1000, "severity": "warn"}]}
ONLY = {"features": {}, "dataset.spine.source": "planes"}  # the config without the flights example's sources


def test_failed_rule_stops_ingest_naming_table_rule_and_metric_and_keeps_the_table(spark, tmp_path, capsys):
    config = flights_config(tmp_path, **{**ONLY, "sources": {"planes": PLANES},
                                        "quality.run_time": "2013-12-31T00:00:00"})
    write(config.landing_dir, "a.csv", "tailnum,seats\nN1,100\nN2,200\n")
    result = ingest.run(spark, config)
    assert result.details["quality"] == "6 passed, 0 warned, 0 failed"
    assert list(result.details["phase_seconds"]) == ["plan", "stage", "check", "commit"]
    assert "[lakeforge] ingest: staged planes: 2 rows read, 0 to quarantine" in capsys.readouterr().out
    table = config.table_path("bronze_planes")
    version = latest_version(spark, table)

    write(config.landing_dir, "b.csv", "tailnum,seats\nN3,300\nN3,400\nN4,5000\n")  # the new batch: b.csv alone
    with pytest.raises(QualityError) as error:
        ingest.run(spark, config)
    assert "table bronze_planes: rule unique(tailnum) failed: duplicate_rows = 2, expected 0" in str(error.value)
    assert "nothing was written" in str(error.value)
    assert latest_version(spark, table) == version
    assert latest_version(spark, config.table_path("bronze_planes_quarantine")) == 0

    history = spark.read.format("delta").load(config.table_path("quality_metrics"))
    expected = spark.createDataFrame([
        ("bronze_planes", 0, "unique(tailnum)", "duplicate_rows", 0.0, "pass"),
        ("bronze_planes", 0, "range(seats)", "violations", 0.0, "pass"),
        ("bronze_planes", None, "unique(tailnum)", "duplicate_rows", 2.0, "fail"),
        ("bronze_planes", None, "range(seats)", "violations", 1.0, "warn"),
    ], "table string, version bigint, rule string, metric string, value double, status string")
    got = history.where(F.col("metric").isin("duplicate_rows", "violations"))
    assert_df_equality(got.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)

    configure_mlflow(config)
    failed = mlflow.search_runs(filter_string="tags.`lakeforge.step` = 'ingest'", output_format="list",
                                order_by=["attributes.start_time DESC"])[0]
    assert failed.info.status == "FAILED"
    assert failed.data.metrics["quality.bronze_planes.unique_tailnum.duplicate_rows"] == 2.0
    reports = sorted((tmp_path / "quality_reports").glob("ingest-*.md"))
    assert "| FAIL | bronze_planes | unique(tailnum) | duplicate_rows | 2 | 0 |  |" in reports[-1].read_text()
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(failed.info.run_id)]
    assert reports[-1].name in artifacts


def test_a_source_failing_while_others_stage_leaves_no_table_and_no_file(spark, tmp_path):
    trips = {"path": "trips/*.csv", "columns": {"trip": "int", "tailnum": "string"}, "max_rejected_fraction": 0.1}
    config = flights_config(tmp_path, **{**ONLY, "sources": {"planes": PLANES, "trips": trips}})
    write(config.landing_dir, "a.csv", "tailnum,seats\nN1,100\nN2,200\n")
    (Path(config.landing_dir) / "trips").mkdir()
    (Path(config.landing_dir) / "trips" / "t.csv").write_text("trip,tailnum\n1,N1\nx,N2\n")  # half the rows unparsable
    with pytest.raises(IngestError, match="source 'trips': 1 of 2 rows"):
        ingest.run(spark, config)
    for table in ("bronze_planes", "bronze_planes_quarantine", "bronze_trips", "bronze_trips_quarantine"):
        path = Path(config.table_path(table))
        assert not list(path.glob("*.parquet")) and not DeltaTable.isDeltaTable(spark, str(path))
