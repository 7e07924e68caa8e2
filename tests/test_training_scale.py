"""Training at scale: distributed hyperparameter search, the training-set size cap and the spark_ml trainer."""
from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pyspark.ml.functions import vector_to_array

from lakeforge import search, spark_ml, train
from lakeforge.config import SearchSettings
from lakeforge.errors import ConfigError
from lakeforge.models import SparkMlModel, load_registered
from lakeforge.pipeline import run_steps
from lakeforge.reproducibility.replay import replay
from lakeforge.split import hash_split
from lakeforge.tasks import task_for
from lakeforge.tracking import configure_mlflow

from conftest import flights_config, months_of_2013, synthetic_time

ROWS_PER_MONTH = 400
DESCRIPTIONS = ["boeing 737-824 turbo-fan", "embraer emb-145xr turbo-fan", "airbus a320-232 turbo-fan", None]
SMALL = {"model.numeric_features": ["temp", "distance"], "model.categorical_features": ["carrier"],
         "model.text_features": ["plane_description"], "windows.train": months_of_2013(1, 1), "windows.score": months_of_2013(2, 2),
         "model.params": {"max_iter": 20}}
GRID = {"model.search": {"grid": {"max_iter": [3, 40], "learning_rate": [0.02, 0.3]}, "metric": "auc"}}
SPARK_ML = {"model.estimator": "pyspark.ml.classification.GBTClassifier", "model.params": {"maxIter": 5}}


def feature_rows() -> pd.DataFrame:
    """Two months of flights whose delay depends on temperature, carrier and the plane's text."""
    rng = np.random.default_rng(11)
    frames = []
    for month in (1, 2):
        temp = rng.normal(40, 10, ROWS_PER_MONTH)
        carrier = rng.choice(["AA", "B6", "UA", None], ROWS_PER_MONTH)
        text = rng.choice(np.array(DESCRIPTIONS, dtype=object), ROWS_PER_MONTH)
        embraer = np.array(["embraer" in (t or "") for t in text])
        late = 0.15 + 0.4 * (temp < 35) + 0.2 * (carrier == "B6") + 0.2 * embraer
        frames.append(pd.DataFrame({
            "key": [f"2013{month:02d}-{i:05d}" for i in range(ROWS_PER_MONTH)], "month": month, "temp": temp,
            "distance": rng.gamma(4, 250, ROWS_PER_MONTH), "carrier": carrier,
            "origin": rng.choice(["EWR", "JFK"], ROWS_PER_MONTH),
            "plane_description": text, "label": (rng.uniform(0, 1, ROWS_PER_MONTH) < late).astype(int)}))
    rows = pd.concat(frames, ignore_index=True)
    rows["time"] = synthetic_time(rows["month"])
    return rows


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A private storage root holding the hand-made feature table."""
    root = tmp_path_factory.mktemp("training_scale")
    config = flights_config(root, **SMALL)
    spark.createDataFrame(feature_rows()).write.format("delta").save(config.table_path(config.dataset.table))
    return root


def config_for(root, experiment: str, **overrides):
    """The small config with its own MLflow experiment and registered model, MLflow pointed at it."""
    config = flights_config(root, **{**SMALL, "mlflow.experiment": experiment,
                                     "model.registered_name": f"scale-{experiment}", **overrides})
    configure_mlflow(config)
    return config


def last_run(step: str = "train") -> mlflow.entities.Run:
    return mlflow.search_runs(filter_string=f"tags.`lakeforge.step` = '{step}'", order_by=["start_time DESC"],
                              max_results=1, output_format="list")[0]


def training_frame(spark, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit and validation rows of month 1, as the train step collects them."""
    features = spark.read.format("delta").load(config.table_path(config.dataset.table)).where("month = 1")
    rows = train.model_input(hash_split(features, "key", config.split.validation_fraction, config.seed),
                             config.model, "key", "label", "is_validation")
    frame = train.to_training_frame(rows, "key")
    return frame[~frame["is_validation"]], frame[frame["is_validation"]]


# --- configuration ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"model.estimator": "sklearn.ensemble.NoSuchClassifier"},
     "model.estimator: cannot use 'sklearn.ensemble.NoSuchClassifier': AttributeError"),
    ({"model.estimator": "sklearn.linear_model.LinearRegression"},
     "model.estimator: LinearRegression is not a classifier, which task.type binary_classification needs"),
    ({"model.estimator": "pyspark.ml.regression.GBTRegressor"},
     "model.estimator: GBTRegressor is not a classifier, which task.type binary_classification needs"),
    ({"model.params": {"max_itre": 3}}, "model.params: ['max_itre'] are not HistGradientBoostingClassifier parameters"),
    ({**SPARK_ML, "model.params": {"maxItre": 5}}, "model.params: ['maxItre'] are not GBTClassifier parameters"),
    ({"model.search": {"grid": {"max_itre": [1, 2]}}},
     "model.search.grid: ['max_itre'] are not HistGradientBoostingClassifier parameters"),
    ({"model.search": {"grid": {"max_iter": []}}}, "model.search.grid: Value error, ['max_iter'] need at least one"),
    ({"model.search": {"grid": {"max_iter": [1]}, "metric": "accuracy"}},
     "model.search.metric: 'accuracy' is not a binary_classification metric"),
    ({"model.search": {"grid": {"max_iter": [1]}, "max_trials": 0}}, "model.search.max_trials: Input should be"),
    ({**GRID, **SPARK_ML}, "model.search: hyperparameter search needs a scikit-learn estimator"),
    ({"model.max_train_rows": 0}, "model.max_train_rows: Input should be greater than or equal to 1"),
])
def test_bad_estimator_or_search_config_names_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as error:
        flights_config(tmp_path, **overrides)
    assert message in str(error.value)


# --- search ----------------------------------------------------------------------------------------------------

def test_grid_trials_are_every_combination_or_a_seeded_draw():
    grid = SearchSettings(grid={"max_iter": [10, 20, 30], "learning_rate": [0.1, 0.2]})
    everything = search.grid_trials(grid, seed=1)
    assert everything[:2] == [{"learning_rate": 0.1, "max_iter": 10}, {"learning_rate": 0.1, "max_iter": 20}]
    assert len(everything) == 6 and len({json.dumps(t, sort_keys=True) for t in everything}) == 6
    capped = grid.model_copy(update={"max_trials": 3})
    drawn = search.grid_trials(capped, seed=1)
    assert len(drawn) == 3 and all(t in everything for t in drawn)
    assert search.grid_trials(capped, seed=1) == drawn


def test_best_trial_maximises_auc_minimises_log_loss_and_breaks_ties_by_trial():
    results = pd.DataFrame({"trial": [0, 1, 2], "params": ["{}"] * 3,
                            "metrics": [{"auc": 0.7, "log_loss": 0.5}, {"auc": 0.8, "log_loss": 0.6},
                                        {"auc": 0.8, "log_loss": 0.5}]})
    assert search.best_trial(results, "auc", greater_is_better=True) == 1
    assert search.best_trial(results, "log_loss", greater_is_better=False) == 0


def test_search_runs_every_trial_on_the_executors_and_picks_the_best(spark, lake):
    config = config_for(lake, "search", **GRID)
    train.run(spark, config)
    first = last_run()
    table = pd.DataFrame(mlflow.load_table("search_trials.json", run_ids=[first.info.run_id]))
    candidates = [config.model.params | t for t in search.grid_trials(config.model.search, config.seed)]
    assert list(table["max_iter"]) == [c["max_iter"] for c in candidates]
    assert list(table["learning_rate"]) == pytest.approx([c["learning_rate"] for c in candidates])
    rows = training_frame(spark, config)
    on_driver = [train.trial_metrics(config, params, rows)
                 for params in candidates]  # each trial refitted here gives what the executors reported
    aucs = [m["auc"] for m in on_driver]
    assert list(table["auc"]) == pytest.approx(aucs) and len(set(aucs)) > 1  # the grid matters on this data
    best = int(np.argmax(aucs))
    assert first.data.params["search_best_trial"] == str(best)
    assert (first.data.params["max_iter"], first.data.params["learning_rate"]) == (
        str(candidates[best]["max_iter"]), str(candidates[best]["learning_rate"]))
    assert first.data.metrics["val_auc"] == pytest.approx(aucs[best])  # the refit is the winning trial

    train.run(spark, config)  # same seed: same trials, same choice, same model
    again = last_run()
    assert again.info.run_id != first.info.run_id
    assert {k: again.data.params[k] for k in ("max_iter", "learning_rate", "search_best_trial")} == {
        k: first.data.params[k] for k in ("max_iter", "learning_rate", "search_best_trial")}
    assert again.data.metrics == first.data.metrics


# --- training-set size cap -------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_rows", [40, 200, 399])
def test_sample_cap_bounds_the_collected_rows_deterministically(spark, lake, max_rows):
    config = flights_config(lake, **SMALL)
    rows = spark.read.format("delta").load(config.table_path(config.dataset.table)).where("month = 1")
    capped, rate = train.capped_rows(rows, "key", ROWS_PER_MONTH, max_rows, seed=42)
    collected = train.to_training_frame(capped, "key")
    assert max_rows / 2 < len(collected) <= max_rows and rate == max_rows / ROWS_PER_MONTH
    assert list(train.to_training_frame(train.capped_rows(rows, "key", ROWS_PER_MONTH, max_rows, seed=42)[0],
                                         "key")["key"]) == list(collected["key"])
    uncapped, rate = train.capped_rows(rows, "key", ROWS_PER_MONTH, ROWS_PER_MONTH, seed=42)
    assert uncapped is rows and rate == 1.0


def test_train_collects_at_most_max_train_rows_and_logs_the_sample_rate(spark, lake):
    config = config_for(lake, "capped", **{"model.max_train_rows": 150})
    train.run(spark, config)
    params = last_run().data.params
    assert int(params["rows_fit"]) + int(params["rows_validation"]) <= 150
    assert int(params["rows_available"]) == ROWS_PER_MONTH
    assert float(params["train_sample_rate"]) == pytest.approx(150 / ROWS_PER_MONTH)


# --- spark_ml trainer ------------------------------------------------------------------------------------------

def test_a_spark_ml_model_is_logged_from_a_main_module_without_a_file(tmp_path):
    """`python -c` (or a pytest-xdist worker) without Spark Connect's dependencies: importing pyspark.ml.connect,
    as mlflow does while logging a Spark ML model, would end the process with exit code 0 and no output."""
    probe = ("from lakeforge import spark_ml; spark_ml._without_spark_connect_ml(); "
             "from mlflow.spark import _is_spark_connect_model as connect; print('classic model:', not connect(1))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (done.returncode, done.stdout) == (0, "classic model: True\n"), done.stderr[-2000:]


def test_spark_ml_model_trains_registers_and_scores_through_the_same_steps(spark, lake):
    config = config_for(lake, "spark-ml", **SPARK_ML)
    results = {r.step: r for r in run_steps(["train", "evaluate", "score", "monitor"], config, spark=spark)}
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(config.model.registered_name, config.model.alias)
    train_run = mlflow.get_run(champion.tags["train_run_id"])
    assert "spark" in mlflow.models.get_model_info(f"models:/{champion.name}/{champion.version}").flavors
    assert train_run.data.params["estimator"] == "pyspark.ml.classification.GBTClassifier"
    assert train_run.data.params["maxIter"] == "5"
    assert 0.6 < train_run.data.metrics["val_auc"] <= 1.0
    assert float(champion.tags["decision_threshold"]) == results["evaluate"].details["threshold"]

    model = load_registered(champion, config.model, config.task.type)
    assert isinstance(model, SparkMlModel)
    features = spark.read.format("delta").load(config.table_path(config.dataset.table))
    month_2 = features.where("month = 2")
    expected = (model.model.transform(train.model_input(month_2, config.model, "key"))
                .select("key", vector_to_array("probability")[1].alias("score")))
    assert_df_equality(model.predict(month_2, "key"), expected, ignore_row_order=True, ignore_nullable=True)

    predictions = spark.read.format("delta").load(config.table_path(config.score.table))
    assert predictions.count() == ROWS_PER_MONTH
    assert predictions.where(F.col("score").isNull() | ~F.col("score").between(0, 1)).count() == 0
    assert_df_equality(predictions.select("key", "score"), expected, ignore_row_order=True, ignore_nullable=True)
    assert results["monitor"].details["live_auc"] > 0.6

    report = replay(spark, train_run.info.run_id)
    assert report.reproduced, report.describe()


def test_spark_ml_pipeline_handles_every_preprocessing_option(spark, lake):
    config = flights_config(lake, **{
        **SMALL, "model.estimator": "pyspark.ml.classification.LogisticRegression", "model.params": {"maxIter": 20},
        "model.numeric_features": ["temp", "distance", "month"],
        "model.preprocessing": {"categorical_encoding": "one_hot", "numeric_imputation": "mean", "scale_numeric": True,
                                "bucketize": {"distance": 4}, "text_vectorizer": "tfidf", "text_dimensions": 8}})
    features = spark.read.format("delta").load(config.table_path(config.dataset.table))
    rows = train.model_input(features, config.model, "key", "label")
    model = spark_ml.fit(rows.where("key < '201302'"), config)
    unseen = rows.where("key >= '201302'").withColumn("carrier", F.lit("ZZ")).withColumn("temp", F.lit(None))
    scored = SparkMlModel(model, config.model, task_for(config.task.type)).predict(unseen, "key")
    assert scored.count() == ROWS_PER_MONTH
    assert scored.where(F.col("score").isNull() | F.isnan("score") | ~F.col("score").between(0, 1)).count() == 0


def test_gradient_boosting_bins_cover_every_indexed_category(spark, lake):
    config = flights_config(lake, **{**SMALL, **SPARK_ML, "model.text_features": [], "model.params": {"maxIter": 2}})
    features = spark.read.format("delta").load(config.table_path(config.dataset.table)).where("month = 1")
    many = features.withColumn("carrier", F.concat(F.lit("c"), (F.crc32("key") % 40).cast("string")))
    model = spark_ml.fit(train.model_input(many, config.model, "key", "label"), config)
    assert model.stages[-1].getMaxBins() == 41  # 40 carriers + the "keep" index for unseen and missing ones
