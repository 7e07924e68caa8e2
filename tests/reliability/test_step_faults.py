"""kill -9 at each phase of features, train and score (a hook at a named phase, not a timer), then a rerun:
the tables equal an uninterrupted run's, with no duplicates; two scores at once. Real Spark, Delta and MLflow
on a small pipeline of trips with a past-only aggregate view."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakeforge import score
from lakeforge.config import load_config
from lakeforge.pipeline import run_steps
from lakeforge.tables import latest_version
from lakeforge.tracking import configure_mlflow

from tiny import tiny_pipeline

# 240 trips of four cars over January 2024, every three hours; features: each car's last three days
TRIPS = "trip,car,at,distance,late\n" + "".join(
    f"{i},c{i % 4},2024-01-{1 + i // 8:02d} {(i % 8) * 3:02d}:00:00,{(i * 7) % 23 + 0.5},{int((i * 7) % 23 > 11)}\n"
    for i in range(240))
SETTINGS = {
    "sources": {"trips": {"path": "trips/*.csv", "columns": {"trip": "int", "car": "string", "at": "timestamp",
                                                             "distance": "double", "late": "int"}}},
    "dataset": {"spine_columns": ["car", "distance"]},
    "features": {"car_days": {"source": "spine", "keys": ["car"], "event_time": "to_date(at)",
                              "aggregate": {"window": "3d", "every": "1d",
                                            "metrics": {"car_trips_3d": "count(*)",
                                                        "car_late_3d": "avg(cast(label AS double))"}}}},
    "windows": {"train": ["2024-01-01", "2024-01-21"], "score": ["2024-01-21", "2024-02-01"]},
    "model": {"numeric_features": ["distance", "car_trips_3d", "car_late_3d"], "categorical_features": ["car"],
              "params": {"max_iter": 20}},
}

# Runs one step in a new process (its own Spark), killed where LAKEFORGE_KILL_AT says: argv = YAML file, step.
STEP = """
import sys
from lakeforge.config import load_config
from lakeforge.pipeline import run_steps
run_steps([sys.argv[2]], load_config(sys.argv[1], {"spark.master": "local[1]"}), report=False)
"""


def killed_at(phase: str, pipeline, step: str) -> None:
    """Run `step` in a subprocess that SIGKILLs itself at `phase`; fails unless it died there."""
    env = {**os.environ, "LAKEFORGE_KILL_AT": phase, "PYSPARK_PYTHON": sys.executable}
    process = subprocess.run([sys.executable, "-c", STEP, str(pipeline), step], env=env, capture_output=True,
                             text=True, timeout=900)
    assert process.returncode == -9, process.stderr[-3000:]


def table(spark, config, name: str):
    return spark.read.format("delta").load(config.table_path(name))


@pytest.fixture(scope="module")
def store(spark, tmp_path_factory):
    """The trips ingested and every step run once without faults: (YAML file, config, the clean dataset and view
    tables' versions, the predictions table's row count)."""
    pipeline = tiny_pipeline(tmp_path_factory.mktemp("faults"), **SETTINGS)
    (pipeline.parent / "lake" / "landing" / "trips" / "a.csv").write_text(TRIPS)
    config = load_config(pipeline)
    run_steps(["ingest", "features", "train"], config, spark=spark, report=False)
    configure_mlflow(config)
    client, name = mlflow.MlflowClient(), config.model.registered_name
    trained = client.get_model_version_by_alias(name, config.evaluation.gate.challenger_alias).version
    client.set_registered_model_alias(name, config.model.alias, trained)  # what the gate would do, minus the gate
    run_steps(["score"], config, spark=spark, report=False)
    clean = {name: latest_version(spark, config.table_path(name)) for name in [config.dataset.table, *config.features]}
    return pipeline, config, clean, table(spark, config, config.score.table).count()


def assert_no_duplicates(frame, columns: list[str]) -> None:
    assert frame.groupBy(*columns).count().where("count > 1").count() == 0


@pytest.mark.parametrize("phase", ["features:views-written", "features:dataset-written"])
def test_features_killed_at_any_phase_then_rerun_equals_a_clean_run(spark, store, phase):
    pipeline, config, clean, _ = store
    killed_at(phase, pipeline, "features")
    run_steps(["features"], config, spark=spark, report=False)
    assert latest_version(spark, config.table_path(config.dataset.table)) > clean[config.dataset.table]
    for name, version in clean.items():
        rows = spark.read.format("delta").option("versionAsOf", version).load(config.table_path(name))
        assert_df_equality(table(spark, config, name), rows, ignore_row_order=True,
                           ignore_column_order=True)


def test_train_killed_after_registering_leaves_the_alias_on_a_complete_version(spark, store):
    pipeline, config, _, _ = store
    configure_mlflow(config)
    client, name = mlflow.MlflowClient(), config.model.registered_name
    challenger = config.evaluation.gate.challenger_alias
    before = client.get_model_version_by_alias(name, challenger).version
    killed_at("train:registered", pipeline, "train")
    orphan = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    assert orphan > int(before) and client.get_model_version_by_alias(name, challenger).version == before
    run_steps(["train"], config, spark=spark, report=False)
    latest = client.get_model_version_by_alias(name, challenger)
    assert int(latest.version) == orphan + 1 and latest.tags["train_run_id"]


def test_score_killed_after_merging_then_rerun_keeps_one_row_per_key_and_model(spark, store):
    pipeline, config, _, rows = store
    killed_at("score:merged", pipeline, "score")
    run_steps(["score"], config, spark=spark, report=False)
    predictions = table(spark, config, config.score.table)
    assert predictions.count() == rows
    assert_no_duplicates(predictions, ["key", "model_name", "model_version"])


def test_two_scores_at_once_both_finish_without_duplicates(spark, store):
    _, config, _, rows = store
    path = config.table_path(config.score.table)
    before = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: score.run(spark, config), range(2)))
    assert [r.rows_in for r in results] == [rows, rows]
    predictions = table(spark, config, config.score.table)
    assert predictions.count() == rows
    assert_no_duplicates(predictions, ["key", "model_name", "model_version"])
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`")
    assert history.count() == before + 2 and history.where(F.col("operation") == "MERGE").count() >= 2
