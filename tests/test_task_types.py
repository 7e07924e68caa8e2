"""Multiclass and regression through train, evaluate, score, monitor and replay on small hand-made
dataset tables (real Spark, Delta and MLflow); the registered pyfunc returns the predictions table."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakeforge import train
from lakeforge.errors import ConfigError
from lakeforge.evaluation import step as evaluate
from lakeforge.pipeline import run_steps
from lakeforge.reproducibility.replay import replay
from lakeforge.tracking import configure_mlflow

from conftest import flights_config, months_of_2013, synthetic_time

ROWS_PER_MONTH = 600
NOT_BINARY = {"cascade.stage_b_label": None, "evaluation.slices.columns": ["carrier"], "evaluation.slices.metric": None,
              "monitor.trigger.metric": None, "monitor.trigger.worse_than": None,
              "model.numeric_features": ["temp", "distance"], "model.categorical_features": ["carrier"],
              "model.text_features": [], "model.params": {"max_iter": 30},
              "windows.train": months_of_2013(1, 1), "windows.score": months_of_2013(2, 3)}
REGRESSION = {**NOT_BINARY, "task.type": "regression", "model.estimator": None, "evaluation.slices.max_gap": 100.0,
              "monitor.trigger.metric": "rmse", "monitor.trigger.worse_than": 1000.0}
MULTICLASS = {**NOT_BINARY, "task.type": "multiclass_classification", "evaluation.slices.max_gap": 0.5}


def feature_rows(task_type: str, seed: int = 4, shuffled_months: tuple[int, ...] = ()) -> pd.DataFrame:
    """Three months; the label follows `temp` (a signal) and the carrier (a number, or one of three classes)."""
    rng = np.random.default_rng(seed)
    rows = 3 * ROWS_PER_MONTH
    frame = pd.DataFrame({"key": [f"k{i:05d}" for i in range(rows)], "month": np.repeat([1, 2, 3], ROWS_PER_MONTH),
                          "carrier": rng.choice(["AA", "UA", "ZZ"], rows), "temp": rng.normal(size=rows),
                          "distance": rng.normal(size=rows)})
    value = 100 + 40 * frame["temp"] + 30 * (frame["carrier"] == "UA") + rng.normal(0, 10, rows)
    if task_type == "regression":
        frame["label"] = value.round(1)
    else:
        frame["label"] = np.select([value < 85, value < 125], ["low", "mid"], "high")
    for month in shuffled_months:
        chosen = frame["month"] == month
        frame.loc[chosen, "label"] = rng.permutation(frame.loc[chosen, "label"].to_numpy())
    frame["time"] = synthetic_time(frame["month"])
    return frame


def write_dataset(spark, config, frame: pd.DataFrame) -> None:
    spark.createDataFrame(frame).write.format("delta").mode("overwrite").save(config.table_path(config.dataset.table))


def champion_pyfunc_outputs(spark, config, months: list[int]) -> pd.DataFrame:
    """The registered champion loaded as a plain pyfunc, predicting the model input of `months`."""
    rows = spark.read.format("delta").load(config.table_path(config.dataset.table)).where(F.col("month").isin(months))
    inputs = train.model_input(rows, config.model, "key").toPandas()
    model = mlflow.pyfunc.load_model(f"models:/{config.model.registered_name}@{config.model.alias}")
    return pd.concat([inputs[["key"]], model.predict(inputs)], axis=1)


def predictions(spark, config) -> pd.DataFrame:
    return spark.read.format("delta").load(config.table_path(config.score.table)).toPandas()


@pytest.fixture(scope="module")
def regression(spark, tmp_path_factory):
    config = flights_config(tmp_path_factory.mktemp("regression"), **REGRESSION)
    write_dataset(spark, config, feature_rows("regression"))
    results = {r.step: r for r in run_steps(["train", "evaluate", "score", "monitor"], config, spark=spark)}
    return config, results


def test_regression_predicts_numbers_and_its_pyfunc_returns_the_predictions_table(spark, regression):
    config, results = regression
    table = predictions(spark, config)
    assert {"key", "prediction", "model_name", "model_version", "features_version", "scored_at"} <= set(table.columns)
    assert not {"score", "decision", "probabilities"} & set(table.columns)
    assert len(table) == 2 * ROWS_PER_MONTH
    served = champion_pyfunc_outputs(spark, config, [2, 3]).merge(table[["key", "prediction"]], on="key")
    assert len(served) == 2 * ROWS_PER_MONTH
    np.testing.assert_allclose(served["prediction_x"], served["prediction_y"], rtol=1e-12)
    labels = feature_rows("regression").set_index("key")["label"]
    error = table.set_index("key")["prediction"] - labels.loc[table["key"]].to_numpy()
    score_run = mlflow.get_run(mlflow.search_runs(filter_string="tags.`lakeforge.step` = 'score'",
                                                  output_format="list")[0].info.run_id)
    assert score_run.data.metrics["test_rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)))
    assert score_run.data.metrics["test_rmse"] < 20 < labels.std()  # the model learned the signal
    frame = feature_rows("regression").set_index("key")
    naive = frame.loc[frame["month"] == 1, "label"].mean()  # the baseline: the training window's mean
    scored = frame.loc[table["key"], "label"]
    assert score_run.data.metrics["baseline_test_rmse"] == pytest.approx(np.sqrt(np.mean((scored - naive) ** 2)))


def test_regression_monitor_writes_live_rmse_per_window_and_label_drift(spark, regression):
    config, results = regression
    live = (spark.read.format("delta").load(config.table_path("live_metrics")).toPandas()
            .sort_values("window").set_index("window"))  # a table read has no row order
    assert list(live.index) == ["2013-02", "2013-03"] and {"rmse", "mae", "r2", "mape"} <= set(live.columns)
    drift = spark.read.format("delta").load(config.table_path("drift_metrics")).toPandas()
    assert {"feature", "prediction", "label"} <= set(drift["kind"])
    assert results["monitor"].details["live_rmse"] == pytest.approx(live.loc["2013-03", "rmse"], abs=1e-4)


def test_replay_reproduces_a_regression_training_run_exactly(spark, regression):
    config, _ = regression
    configure_mlflow(config)
    champion = mlflow.MlflowClient().get_model_version_by_alias(config.model.registered_name, config.model.alias)
    report = replay(spark, champion.tags["train_run_id"])
    assert report.reproduced, report.describe()


def test_the_regression_gate_promotes_a_better_model_and_refuses_a_worse_one(spark, tmp_path):
    config = flights_config(tmp_path, **REGRESSION, **{"windows.evaluate": months_of_2013(2, 2)})
    configure_mlflow(config)
    outcomes = []
    for shuffled in (True, False, True):  # a model of noise, a good one, noise again
        write_dataset(spark, config, feature_rows("regression", shuffled_months=(1,) if shuffled else ()))
        train.run(spark, config)
        outcomes.append(evaluate.run(spark, config).details)
    assert [o["decision"] for o in outcomes] == ["promoted", "promoted", "refused"]
    assert outcomes[1]["rmse"] < outcomes[0]["rmse"] and outcomes[2]["rmse"] > outcomes[1]["rmse"]
    version = mlflow.MlflowClient().get_model_version(config.model.registered_name, "3")
    assert version.tags["gate_reason"].startswith("rmse ") and "does not beat champion v2" in version.tags["gate_reason"]


def test_multiclass_predicts_classes_with_probabilities_and_its_pyfunc_returns_them(spark, tmp_path):
    config = flights_config(tmp_path, **MULTICLASS)
    write_dataset(spark, config, feature_rows("multiclass"))
    results = {r.step: r for r in run_steps(["train", "evaluate", "score", "monitor"], config, spark=spark)}
    table = predictions(spark, config)
    assert set(table["prediction"]) == {"low", "mid", "high"} and "score" not in table.columns
    sums = table["probabilities"].map(lambda p: sum(dict(p).values()))
    np.testing.assert_allclose(sums, 1.0, rtol=1e-9)
    served = champion_pyfunc_outputs(spark, config, [2, 3]).merge(table[["key", "prediction", "probabilities"]],
                                                                  on="key")
    assert (served["prediction_x"] == served["prediction_y"]).all()
    for own, stored in zip(served["probabilities_x"], served["probabilities_y"]):
        assert own == pytest.approx(dict(stored), rel=1e-12)
    live = spark.read.format("delta").load(config.table_path("live_metrics")).toPandas()
    assert (live["accuracy"] > 0.7).all() and {"macro_f1", "log_loss", "recall_low"} <= set(live.columns)
    assert results["evaluate"].details["decision"] == "promoted" and "log_loss" in results["evaluate"].details


def test_a_spark_ml_regressor_trains_and_scores_without_collecting_rows(spark, tmp_path, monkeypatch):
    config = flights_config(tmp_path, **{**REGRESSION, "model.estimator": "pyspark.ml.regression.GBTRegressor",
                                         "model.params": {"maxIter": 10}})
    write_dataset(spark, config, feature_rows("regression"))
    brought, frames = [], type(spark.range(1))  # the session's DataFrame class
    for method in ("toPandas", "collect"):
        original = getattr(frames, method)

        def recording(self, original=original):
            rows = original(self)
            brought.append(len(rows))
            return rows
        monkeypatch.setattr(frames, method, recording)
    train.run(spark, config)
    assert brought and max(brought) <= 50 < ROWS_PER_MONTH  # aggregates and the 50-row signature sample only
    monkeypatch.undo()
    run_steps(["evaluate", "score"], config, spark=spark)
    table = predictions(spark, config)
    assert len(table) == 2 * ROWS_PER_MONTH and table["prediction"].notna().all()
    assert table["prediction"].corr(feature_rows("regression").set_index("key").loc[table["key"], "label"]
                                    .reset_index(drop=True)) > 0.8


@pytest.mark.parametrize("overrides, message", [
    ({"model.estimator": "sklearn.ensemble.HistGradientBoostingClassifier"},
     "model.estimator: HistGradientBoostingClassifier is not a regressor, which task.type regression needs"),
    ({"model.estimator": "sklearn.linear_model.Ridge", "model.params": {"alpah": 1.0}},
     "model.params: ['alpah'] are not Ridge parameters"),
    ({"model.search": {"grid": {"max_depht": [2, 3]}}},
     "model.search.grid: ['max_depht'] are not HistGradientBoostingRegressor parameters"),
    ({"evaluation.objective.class_costs": {"a": {"b": 2.0}}},
     "evaluation.objective.class_costs: applies to task.type multiclass_classification, not regression"),
    ({"evaluation.primary_metric": "auc"}, "evaluation.primary_metric: 'auc' is not a regression metric"),
])
def test_regression_config_mistakes_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as error:
        flights_config(tmp_path, **{**REGRESSION, **overrides})
    assert message in str(error.value)


def test_a_spark_ml_classifier_predicts_class_names_and_their_probabilities(spark, tmp_path):
    from lakeforge import spark_ml
    from lakeforge.models import SparkMlModel
    from lakeforge.tasks import task_for

    config = flights_config(tmp_path, **{**MULTICLASS, "model.estimator": "pyspark.ml.classification.RandomForestClassifier",
                                         "model.params": {"numTrees": 10}})
    task = task_for(config.task.type)
    assert task.output_columns() == ["prediction", "probabilities"]
    rows = train.model_input(spark.createDataFrame(feature_rows("multiclass")), config.model, "key", "label")
    model = spark_ml.fit(rows, config)
    scored = SparkMlModel(model, config.model, task).predict(rows, "key").toPandas()
    assert list(scored.columns) == ["key", "prediction", "probabilities"]
    assert set(scored["prediction"]) <= {"low", "mid", "high"} and len(set(scored["prediction"])) == 3
    np.testing.assert_allclose(scored["probabilities"].map(lambda p: sum(dict(p).values())), 1.0, rtol=1e-9)
    best = scored["probabilities"].map(lambda p: max(dict(p), key=dict(p).get))
    assert (best == scored["prediction"]).all()
