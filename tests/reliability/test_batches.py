"""Batches by content and all-or-nothing ingests: re-ingests, added and changed files, whole-table rules,
kill -9 at each phase of an ingest's commit, and two ingests racing. Real Spark, Delta and MLflow."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakeforge import ingest
from lakeforge.errors import IngestError
from lakeforge.ingest import BatchChoice
from lakeforge.quality.runner import QualityError
from lakeforge.tables import latest_version

from conftest import REPO, flights_config

PLANES = {"path": "planes/*.csv", "columns": {"tailnum": "string", "seats": "int"}, "max_rejected_fraction": 0.5,
          "quality": [{"rule": "unique", "columns": ["tailnum"]}]}
TRIPS = {"path": "trips/*.csv", "columns": {"trip": "int", "tailnum": "string"},
         "quality": [{"rule": "references", "column": "tailnum", "to_source": "planes", "across": "table"}]}
SETTINGS = {"features": {}, "dataset.spine.source": "planes", "sources": {"planes": PLANES, "trips": TRIPS}}
TABLES = ["bronze_planes", "bronze_planes_quarantine", "bronze_trips", "bronze_trips_quarantine", "ingested_files",
          "quality_metrics"]

# Runs one ingest in a new process (its own Spark), killed where LAKEFORGE_KILL_AT says: argv = storage root.
INGEST = f"""
import sys
sys.path.insert(0, {str(REPO / 'tests')!r})
from conftest import flights_config
from lakeforge import ingest
from lakeforge.spark import get_spark
config = flights_config(sys.argv[1], **{{**{SETTINGS!r}, "spark.master": "local[1]"}})
ingest.run(get_spark(config.spark, sys.argv[1] + "/warehouse"), config)
"""


def land(config, source: str, name: str, text: str) -> None:
    path = Path(config.landing_dir) / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def planes_config(tmp_path, **overrides):
    config = flights_config(tmp_path, **{**SETTINGS, **overrides})
    land(config, "planes", "a.csv", "tailnum,seats\nN1,100\nN2,200\n")
    land(config, "trips", "a.csv", "trip,tailnum\n1,N1\n2,N2\n")
    return config


def versions(spark, config) -> dict[str, int | None]:
    return {t: latest_version(spark, config.table_path(t)) if DeltaTable.isDeltaTable(spark, config.table_path(t))
            else None for t in TABLES}


def rows(spark, config, table: str) -> list[tuple]:
    """The table's rows without ingest times and ids, source files relative to the landing folder."""
    frame = spark.read.format("delta").load(config.table_path(table)).drop("_ingested_at", "_batch_id", "_row_id")
    relative = lambda value: value.replace(config.landing_dir, "") if isinstance(value, str) else value  # noqa: E731
    return sorted(tuple(relative(v) for v in r) for r in frame.collect())


def test_reingesting_the_same_files_is_a_no_op(spark, tmp_path):
    config = planes_config(tmp_path)
    first = ingest.run(spark, config)
    before = versions(spark, config)
    again = ingest.run(spark, config)
    assert first.rows_out == 4 and again.rows_in == again.rows_out == 0
    assert again.details["files_skipped"] == 2
    assert versions(spark, config) == before


def test_an_added_header_only_file_adds_no_rows_and_earlier_rows_are_not_read_again(spark, tmp_path):
    config = planes_config(tmp_path)
    ingest.run(spark, config)
    land(config, "planes", "b.csv", "tailnum,seats\n")
    land(config, "trips", "b.csv", "trip,tailnum\n3,N2\n")
    result = ingest.run(spark, config)
    assert result.rows_in == 1 and result.details["files_skipped"] == 2
    assert len(rows(spark, config, "bronze_planes")) == 2 and len(rows(spark, config, "bronze_trips")) == 3
    files = spark.read.format("delta").load(config.table_path("ingested_files"))
    assert files.count() == 4 and files.select("file").distinct().count() == 4


def test_a_changed_file_under_an_ingested_name_is_refused_unless_its_batch_is_replaced(spark, tmp_path):
    config = planes_config(tmp_path)
    ingest.run(spark, config)
    land(config, "planes", "b.csv", "tailnum,seats\nN3,300\n")
    ingest.run(spark, config)
    land(config, "planes", "a.csv", "tailnum,seats\nN1,150\nN2,250\n")  # same name and size, other content
    before = versions(spark, config)
    with pytest.raises(IngestError) as error:
        ingest.run(spark, config)
    message = str(error.value)
    assert "source 'planes': 1 file(s) changed since they were ingested" in message
    assert re.search(rf"{re.escape(config.landing_dir)}/planes/a.csv \(batch planes-[0-9a-f]{{12}}\)", message)
    assert "--replace-batch" in message
    assert versions(spark, config) == before

    replaced = ingest.run(spark, config, BatchChoice(replace=True))
    assert replaced.rows_out == 2  # a.csv's batch read again from a.csv as it is now; b.csv's batch kept
    assert rows(spark, config, "bronze_planes") == sorted([
        ("N1", 150, "/planes/a.csv"), ("N2", 250, "/planes/a.csv"), ("N3", 300, "/planes/b.csv")])


def test_unique_and_references_across_the_table_see_earlier_batches(spark, tmp_path):
    config = planes_config(tmp_path, **{"sources.planes.quality": [
        {"rule": "unique", "columns": ["tailnum"], "across": "table"}]})
    ingest.run(spark, config)
    land(config, "trips", "b.csv", "trip,tailnum\n3,N1\n")  # N1 is in the planes table, not in this run's batch
    assert ingest.run(spark, config).details["quality"].endswith("0 failed")
    land(config, "planes", "b.csv", "tailnum,seats\nN1,300\n")  # N1 again, in a new batch
    before = versions(spark, config)
    with pytest.raises(QualityError, match=r"unique\(tailnum; across table\) failed: duplicate_rows = 2"):
        ingest.run(spark, config)
    assert {t: v for t, v in versions(spark, config).items() if t != "quality_metrics"} == \
        {t: v for t, v in before.items() if t != "quality_metrics"}


def clean_tables(spark, config) -> dict[str, list[tuple]]:
    return {t: rows(spark, config, t) for t in TABLES[:4]}


@pytest.fixture(scope="module")
def clean_run(spark, tmp_path_factory):
    """The tables one uninterrupted ingest of the same files writes."""
    config = planes_config(tmp_path_factory.mktemp("clean"))
    ingest.run(spark, config)
    return clean_tables(spark, config)


@pytest.mark.parametrize("phase", ["ingest:recorded", "ingest:ledger-committed", "ingest:table-committed"])
def test_an_ingest_killed_at_any_phase_is_all_or_nothing_and_the_next_run_makes_it_whole(spark, tmp_path, phase,
                                                                                        clean_run):
    config = planes_config(tmp_path)
    env = {**os.environ, "LAKEFORGE_KILL_AT": phase, "PYSPARK_PYTHON": sys.executable}
    killed = subprocess.run([sys.executable, "-c", INGEST, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    committed = versions(spark, config)
    if phase == "ingest:recorded":  # before the point of no return (the ledger's commit): nothing visible
        assert all(committed[t] is None for t in TABLES[:5]), committed
    result = ingest.run(spark, config)
    assert clean_tables(spark, config) == clean_run
    metrics = spark.read.format("delta").load(config.table_path("quality_metrics"))
    assert metrics.where(F.col("version").isNotNull()).groupBy("table", "rule", "metric").count() \
        .where("count > 1").count() == 0  # one committed metrics row per rule, not one per attempt
    if phase in ("ingest:ledger-committed", "ingest:table-committed"):  # completed, then nothing new to read
        assert result.rows_in == 0
    assert not list((tmp_path / "_pending_ingests").glob("*.json"))


def test_two_ingests_racing_commit_the_files_once(spark, tmp_path, clean_run):
    config = planes_config(tmp_path)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    racers = [subprocess.Popen([sys.executable, "-c", INGEST, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(racer.wait(timeout=900), racer.stderr.read()) for racer in racers]
    assert sorted(code for code, _ in outcomes)[0] == 0, outcomes
    for code, stderr in outcomes:
        assert code == 0 or "another ingest committed to" in stderr, stderr[-2000:]
    assert clean_tables(spark, config) == clean_run
    assert ingest.run(spark, config).rows_in == 0
