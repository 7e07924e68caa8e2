"""The monitor step end to end on a small feature table: real train, score, Delta tables and MLflow.

Month 1 trains the model; month 2 looks like it; in month 3 the temperature moves by three
standard deviations. After training, the feature table is rewritten with month 1 temperatures
shifted, as a changed feature pipeline would do, so scoring reads features the model never saw.
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from lakeforge.cli import main
from lakeforge.drift.trigger import EXIT_RETRAIN_NEEDED
from lakeforge.pipeline import run_steps
from lakeforge.tracking import configure_mlflow

from conftest import FLIGHTS_CONF, flights_config, months_of_2013, synthetic_time

ROWS_PER_MONTH = 1500
TEMPERATURE = {1: 40.0, 2: 40.0, 3: 70.0}
OVERRIDES = {
    "model.numeric_features": ["temp", "distance"], "model.categorical_features": ["carrier"],
    "model.text_features": [], "windows.train": months_of_2013(1, 1), "model.params.max_iter": 20,
    "windows.score": months_of_2013(2, 3), "monitor.trigger.drift_share": 0.3, "monitor.plot_features": 3,
}


def feature_rows(month_1_temperature_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(5)  # a seed whose months 1 and 2 are close: W/std < 0.04
    frames = []
    for month, mean in TEMPERATURE.items():
        temp = rng.normal(mean + (month_1_temperature_shift if month == 1 else 0.0), 10, ROWS_PER_MONTH)
        carrier = rng.choice(["AA", "B6", "UA"], ROWS_PER_MONTH)
        delayed = (rng.uniform(0, 1, ROWS_PER_MONTH) < 0.2 + 0.4 * (temp < 35) + 0.2 * (carrier == "B6")).astype(int)
        frames.append(pd.DataFrame({
            "key": [f"2013{month:02d}-{i:05d}" for i in range(ROWS_PER_MONTH)], "month": month,
            "temp": temp, "distance": rng.gamma(4, 250, ROWS_PER_MONTH), "carrier": carrier, "label": delayed}))
    rows = pd.concat(frames, ignore_index=True)
    rows["time"] = synthetic_time(rows["month"])
    return rows


@pytest.fixture(scope="module")
def monitored(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("monitor")
    config = flights_config(root, **OVERRIDES)
    features_path = config.table_path(config.dataset.table)
    spark.createDataFrame(feature_rows()).write.format("delta").partitionBy("month").save(features_path)
    run_steps(["train"], config, spark=spark)
    configure_mlflow(config)
    client = mlflow.MlflowClient()
    trained = client.get_model_version_by_alias(config.model.registered_name, config.evaluation.gate.challenger_alias)
    client.set_registered_model_alias(config.model.registered_name, config.model.alias, trained.version)
    spark.createDataFrame(feature_rows(month_1_temperature_shift=25.0)).write.format("delta").mode("overwrite").save(
        features_path)
    run_steps(["score"], config, spark=spark)
    sets = [f"--set=storage_root={root}", "--set=spark.conf={spark.sql.shuffle.partitions: 2}"]
    sets += [f"--set={key}={value}" for key, value in OVERRIDES.items()]
    exit_code = main(["run", "monitor", "--conf", str(FLIGHTS_CONF), *sets])
    drift = spark.read.format("delta").load(config.table_path("drift_metrics")).toPandas()
    live = spark.read.format("delta").load(config.table_path("live_metrics")).toPandas()
    return config, exit_code, drift, live


def decisive(drift: pd.DataFrame, kind: str, window: str) -> dict[str, bool]:
    rows = drift[(drift["kind"] == kind) & (drift["window"] == window) & drift["decisive"]]
    return dict(zip(rows["feature"], rows["drifted"]))


def test_temperature_drifts_in_march_only(monitored):
    _, _, drift, _ = monitored
    assert decisive(drift, "feature", "2013-02") == {"temp": False, "distance": False, "carrier": False}
    assert decisive(drift, "feature", "2013-03") == {"temp": True, "distance": False, "carrier": False}
    methods = set(drift[(drift["feature"] == "temp") & (drift["window"] == "2013-03")]["method"])
    assert methods == {"psi", "jensen_shannon", "chi2_pvalue", "ks", "wasserstein_normed"}
    assert set(drift["kind"]) == {"feature", "prediction", "label", "skew"}


def test_label_drift_follows_the_delay_rate(monitored):
    _, _, drift, _ = monitored  # warm March: fewer delays (the delay rate falls from about 0.5 to 0.3)
    assert decisive(drift, "label", "2013-02") == {"label": False}
    assert decisive(drift, "label", "2013-03") == {"label": True}


def test_skew_between_training_and_serving_features_is_reported(monitored):
    _, _, drift, _ = monitored
    assert decisive(drift, "skew", "training rows") == {"temp": True, "distance": False, "carrier": False}


def test_prediction_drift_follows_the_temperature(monitored):
    _, _, drift, _ = monitored
    psi = drift[(drift["kind"] == "prediction") & (drift["method"] == "psi")].set_index("window")["value"]
    assert psi["2013-03"] > 0.2 > psi["2013-02"]


def test_live_auc_matches_scikit_learn_on_the_stored_predictions(spark, monitored):
    config, _, _, live = monitored
    predictions = spark.read.format("delta").load(config.table_path("predictions")).toPandas()
    labelled = predictions.merge(feature_rows(25.0)[["key", "month", "label"]], on="key")
    by_window = live.set_index("window")
    for month, rows in labelled.groupby("month"):
        assert by_window.loc[f"2013-{month:02d}", "auc"] == pytest.approx(roc_auc_score(rows["label"], rows["score"]))
        assert by_window.loc[f"2013-{month:02d}", "rows"] == len(rows)


def test_trigger_fires_and_sets_the_exit_code(monitored):
    config, exit_code, _, _ = monitored
    assert exit_code == EXIT_RETRAIN_NEEDED
    run = mlflow.search_runs(filter_string="tags.`lakeforge.step` = 'monitor'", output_format="list")[0]
    assert run.data.tags["lakeforge.monitor.trigger"] == "fired"
    assert "drifted feature share 0.33 >= 0.3 in 2013-03" in run.data.tags["lakeforge.monitor.reasons"]
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "monitor")]
    plot = Path(config.location("monitor")) / f"drift-{run.info.run_id}.png"
    assert artifacts == [f"monitor/{plot.name}"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    states = [json.loads(path.read_text()) for path in Path(config.location("runs")).glob("*.json")]
    assert [s["steps"]["monitor"]["details"]["plot"] for s in states if "monitor" in s["steps"]] == [str(plot)]
