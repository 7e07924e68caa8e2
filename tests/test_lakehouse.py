"""Reading the pipeline's tables without a JVM: delta-rs + DuckDB (lakeforge.lakehouse, `lakeforge query`)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest
from chispa import assert_df_equality
from deltalake import write_deltalake

import lakeforge
from lakeforge.cli import main
from lakeforge.lakehouse import QueryError, existing_tables, query, read_table

from conftest import FLIGHTS_CONF, REPO, flights_config

SAMPLE_ROWS = 200


@pytest.fixture
def lake(tmp_path):
    """A flights config whose storage root holds `predictions` (versions 0 and 1) written by delta-rs."""
    config = flights_config(tmp_path)
    path = config.table_path("predictions")
    write_deltalake(path, pd.DataFrame({"key": ["a", "b"], "score": [0.25, 0.75]}))
    write_deltalake(path, pd.DataFrame({"key": ["c"], "score": [0.5]}), mode="append")
    write_deltalake(config.table_path("dataset_rows"), pd.DataFrame({"key": ["a", "b", "c"], "label": [0, 1, 1]}))
    return config


def test_read_table_reads_the_newest_or_a_given_version(lake):
    assert sorted(read_table("predictions", config=lake)["key"]) == ["a", "b", "c"]
    assert sorted(read_table("predictions", version=0, config=lake)["key"]) == ["a", "b"]
    assert list(read_table("predictions", config=lake, columns=["score"]).columns) == ["score"]
    assert lakeforge.read_table is read_table and "read_table" in lakeforge.__all__


def test_query_joins_tables_and_travels_in_time(lake):
    joined = query("SELECT p.key, p.score, d.label FROM predictions p JOIN dataset_rows d USING (key) ORDER BY key", lake)
    assert joined.to_dict("list") == {"key": ["a", "b", "c"], "score": [0.25, 0.75, 0.5], "label": [0, 1, 1]}
    counts = query("SELECT (SELECT count(*) FROM predictions@v0) AS old, (SELECT count(*) FROM predictions) AS new", lake)
    assert counts.iloc[0].tolist() == [2, 3]
    assert query("SELECT count(*) AS n FROM predictions WHERE score > ?", lake, [0.4])["n"].item() == 2
    assert existing_tables(lake) == ["dataset_rows", "predictions"]


def test_bad_names_versions_and_sql_are_clear_errors(lake, capsys):
    with pytest.raises(QueryError, match=r"Table with name nope does not exist.*\(tables: dataset_rows, predictions\)"):
        query("SELECT * FROM nope", lake)
    with pytest.raises(QueryError, match=r"table 'predictions': cannot read version 9 \(versions 0\.\.1\)"):
        query("SELECT * FROM predictions@v9", lake)
    with pytest.raises(QueryError, match=r"no table 'drift_metrics' under .*delta \(tables: dataset_rows, predictions\)"):
        read_table("drift_metrics", config=lake)
    args = ["query", "SELEC 1", "--conf", str(FLIGHTS_CONF), "--set", f"storage_root={lake.storage_root}"]
    assert main(args) == 2
    assert "lakeforge: error: query: Parser Error: syntax error" in capsys.readouterr().err


def test_lakeforge_query_prints_rows_without_pyspark(lake):
    """The command in a fresh interpreter: rows in every format, and neither pyspark nor mlflow imported."""
    probe = ("import sys, io, contextlib; from lakeforge.cli import main; out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out): code = main(sys.argv[1:])\n"
             "print(out.getvalue() + f'EXIT {code} ' + str(sorted(m for m in ('pyspark', 'mlflow', 'py4j') "
             "if m in sys.modules)))")
    common = ["--conf", str(FLIGHTS_CONF), "--set", f"storage_root={lake.storage_root}"]
    sql = "SELECT key, score FROM predictions ORDER BY key"

    def run(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-c", probe, "query", sql, *common, *extra], capture_output=True,
                              text=True, cwd=REPO, check=True)
        return done.stdout

    table = run()
    assert "│ a       │   0.25 │" in table and table.rstrip().endswith("EXIT 0 []")
    assert run("--format", "csv").startswith("key,score\na,0.25\nb,0.75\nc,0.5\n")
    lines = run("--format", "json").splitlines()
    assert [json.loads(line) for line in lines[:3]] == [{"key": "a", "score": 0.25}, {"key": "b", "score": 0.75},
                                                        {"key": "c", "score": 0.5}]


@pytest.mark.e2e
def test_delta_rs_reads_every_table_of_a_pipeline_run_as_spark_does(spark, flights_pipeline):
    """Every Delta table the run wrote: same row count, and the same rows for a sample of keys."""
    config, _, _ = flights_pipeline
    tables = existing_tables(config)
    assert {"bronze_flights", "bronze_flights_quarantine", config.dataset.table, "predictions", "quality_metrics",
            "drift_metrics", "live_metrics", *config.features} <= set(tables)
    for name in tables:
        from_spark = spark.read.format("delta").load(config.table_path(name))
        from_rs = read_table(name, config=config)
        assert len(from_rs) == from_spark.count(), name
        assert list(from_rs.columns) == from_spark.columns, name
        read_by_rs = spark.createDataFrame(from_rs, schema=from_spark.schema)
        first = [from_spark.orderBy(*from_spark.columns).limit(SAMPLE_ROWS), read_by_rs.orderBy(*from_spark.columns).limit(SAMPLE_ROWS)]
        assert_df_equality(*first, ignore_nullable=True)


@pytest.mark.e2e
def test_lakeforge_query_returns_first_rows_within_two_seconds(flights_pipeline):
    """Time to first rows of the command on the run's predictions, in a new process (interpreter start included);
    the best of three, so that a busy machine's scheduling noise does not decide."""
    config, _, _ = flights_pipeline
    command = [sys.executable, "-m", "lakeforge.cli", "query", "SELECT * FROM predictions LIMIT 5",
               "--conf", str(FLIGHTS_CONF), "--set", f"storage_root={config.storage_root}"]
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
        timings.append(time.perf_counter() - started)
        assert "score" in done.stdout and "5 rows" in done.stdout
    print(f"lakeforge query: first rows in {min(timings):.2f}s (runs: {', '.join(f'{t:.2f}' for t in timings)})")
    assert min(timings) < 2.0
