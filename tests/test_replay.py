"""Replay: a train run re-run from its manifest after new data arrived gives the same metrics and predictions."""
from __future__ import annotations

import mlflow
import numpy as np
import pytest
from pyspark.sql import functions as F

from lakeforge import train
from lakeforge.cli import main
from lakeforge.pipeline import run_steps
from lakeforge.reproducibility.manifest import load_manifest
from lakeforge.reproducibility.replay import ReplayError, compare_metrics, compare_predictions, replay
from lakeforge.tracking import REPLAY_OF_TAG, configure_mlflow

from conftest import FLIGHTS_CONF, flights_config, months_of_2013

pytestmark = pytest.mark.e2e
ONE_MONTH = {"windows.train": months_of_2013(1, 1), "model.params.max_iter": 20, "mlflow.experiment": "replay"}


def runs_of(step: str) -> list:
    return mlflow.search_runs(filter_string=f"tags.`lakeforge.step` = '{step}'", order_by=["start_time ASC"],
                              output_format="list")


def newest_in_history(spark, path: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg(F.max("version")).head()[0]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """One month ingested, featurized and trained on; then late flights are appended to the feature table."""
    config = flights_config(tmp_path_factory.mktemp("replay"), months=[1], **ONE_MONTH)
    run_steps(["ingest", "features", "train"], config, spark=spark)
    configure_mlflow(config)
    history_at_train = {t: newest_in_history(spark, config.table_path(t)) for t in [config.dataset.table]}
    features = config.table_path(config.dataset.table)
    late = (spark.read.format("delta").load(features).where(F.col("day") <= 7)
            .withColumn("key", F.concat("key", F.lit("-late"))))
    late.write.format("delta").mode("append").save(features)
    return config, runs_of("train")[0], history_at_train


def test_train_manifest_lists_the_feature_version_from_history(lake):
    config, first, history_at_train = lake
    inputs = load_manifest(first.info.run_id)["inputs"]
    assert [(t["name"], t["version"]) for t in inputs] == [(config.dataset.table, history_at_train[config.dataset.table])]


def test_replay_after_new_data_gives_identical_metrics_and_predictions(spark, lake, capsys):
    config, first, _ = lake
    registered = mlflow.search_model_versions(filter_string=f"name = '{config.model.registered_name}'")
    code = main(["replay", first.info.run_id, "--conf", str(FLIGHTS_CONF),
                 "--set", f"storage_root={config.storage_root}", "--set", "mlflow.experiment=replay"])
    assert code == 0, capsys.readouterr().out
    assert "reproduced" in capsys.readouterr().out
    replays = mlflow.search_runs(filter_string=f"tags.`{REPLAY_OF_TAG}` = '{first.info.run_id}'", output_format="list")
    assert len(replays) == 1
    replayed = replays[0]
    assert replayed.data.metrics == first.data.metrics
    assert load_manifest(replayed.info.run_id)["inputs"] == load_manifest(first.info.run_id)["inputs"]
    pinned = load_manifest(first.info.run_id)["inputs"][0]
    rows = (train.model_input(spark.read.format("delta").option("versionAsOf", pinned["version"]).load(pinned["path"]),
                              config.model, "key").orderBy("key").toPandas())
    columns = train.feature_columns(config.model)
    original, again = (mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(rows[columns])
                       for run in (first, replayed))
    np.testing.assert_array_equal(original["score"].to_numpy(), again["score"].to_numpy())
    after = mlflow.search_model_versions(filter_string=f"name = '{config.model.registered_name}'")
    assert [v.version for v in after] == [v.version for v in registered]
    assert {v.version: v.aliases for v in after} == {v.version: v.aliases for v in registered}


def test_fresh_train_reads_the_new_version_and_replay_comparison_names_the_differences(spark, lake):
    config, first, history_at_train = lake
    train.run(spark, config)
    fresh = runs_of("train")[-1]
    features = config.table_path(config.dataset.table)
    assert load_manifest(fresh.info.run_id)["inputs"][0]["version"] == newest_in_history(spark, features)
    assert newest_in_history(spark, features) > history_at_train[config.dataset.table]
    assert int(fresh.data.params["rows_fit"]) > int(first.data.params["rows_fit"])
    metric_differences = compare_metrics(first.data.metrics, fresh.data.metrics, tolerance=0.0)
    assert any(d.startswith("metric train_log_loss:") for d in metric_differences)
    assert compare_metrics(first.data.metrics, fresh.data.metrics, tolerance=1.0) == []
    prediction_differences = compare_predictions(spark, config, load_manifest(first.info.run_id),
                                                 first.info.run_id, fresh.info.run_id, tolerance=0.0, rows=200)
    assert len(prediction_differences) == 1 and "of 200 sampled rows" in prediction_differences[0]


def test_steps_that_write_tables_are_not_replayed(spark, lake):
    config, _, _ = lake
    features_run = runs_of("features")[0]
    with pytest.raises(ReplayError, match="is a 'features' run; replay supports \\['train'\\]"):
        replay(spark, features_run.info.run_id)
