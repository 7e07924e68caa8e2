"""Champion/challenger gate: train -> evaluate on a small hand-made feature table, real Delta and MLflow."""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from lakeforge.config import GateSettings
from lakeforge.evaluation import step as evaluate
from lakeforge.evaluation.gate import ModelEvaluation, decide
from lakeforge import train
from lakeforge.tracking import configure_mlflow

from conftest import flights_config, months_of_2013, synthetic_time

SETTINGS = {"model.numeric_features": ["signal", "noise"], "model.categorical_features": ["carrier"],
            "model.text_features": [],
            "windows.train": months_of_2013(1, 1), "model.params": {"max_iter": 30},
            "windows.evaluate": months_of_2013(2, 2), "evaluation.objective.min_recall": 0.5,
            "evaluation.slices.columns": ["carrier", "origin"], "evaluation.slices.min_rows": 100}


def feature_rows(seed: int, shuffled_training_labels: bool, random_carrier: str | None = None) -> pd.DataFrame:
    """Month 1 (training) and month 2 (held-out evaluation): `label` follows `signal`.

    With `shuffled_training_labels`, month 1's labels are permuted (a model learns nothing);
    `random_carrier`'s labels are coin flips in both months (no model can do well there).
    """
    rng = np.random.default_rng(seed)
    rows = 2400
    frame = pd.DataFrame({
        "key": [f"f{i:05d}" for i in range(rows)],
        "month": np.repeat([1, 2], rows // 2),
        "carrier": rng.choice(["AA", "UA", "ZZ"], rows),
        "origin": rng.choice(["EWR", "JFK"], rows),
        "signal": rng.normal(size=rows),
        "noise": rng.normal(size=rows),
    })
    frame["time"] = synthetic_time(frame["month"])
    frame["label"] = (frame["signal"] + 0.3 * rng.normal(size=rows) > 0.5).astype(int)
    if random_carrier is not None:
        coin = rng.binomial(1, 0.3, rows)
        frame["label"] = np.where(frame["carrier"] == random_carrier, coin, frame["label"])
    if shuffled_training_labels:
        training = frame["month"] == 1
        frame.loc[training, "label"] = rng.permutation(frame.loc[training, "label"].to_numpy())
    return frame


def train_on(spark, config, frame: pd.DataFrame) -> None:
    spark.createDataFrame(frame).write.format("delta").mode("overwrite").save(config.table_path("flight_features"))
    train.run(spark, config)


def aliases(config) -> dict[str, str]:
    registered = mlflow.MlflowClient().get_registered_model(config.model.registered_name)
    return {alias: str(version) for alias, version in registered.aliases.items()}


def test_gate_promotes_the_first_model_then_a_better_one_and_refuses_a_worse_one(spark, tmp_path):
    config = flights_config(tmp_path, **SETTINGS)
    configure_mlflow(config)
    client = mlflow.MlflowClient()
    name = config.model.registered_name

    train_on(spark, config, feature_rows(1, shuffled_training_labels=True))
    assert aliases(config) == {"challenger": "1"}
    first = evaluate.run(spark, config)
    assert first.details["decision"] == "promoted"
    assert aliases(config) == {"champion": "1"}

    train_on(spark, config, feature_rows(1, shuffled_training_labels=False))
    better = evaluate.run(spark, config)
    assert better.details["decision"] == "promoted"
    assert aliases(config) == {"champion": "2"}
    promoted = client.get_model_version(name, "2")
    assert promoted.tags["gate_decision"] == "promoted"
    assert float(promoted.tags[train.DECISION_THRESHOLD_TAG]) == better.details["threshold"]
    assert better.details["expected_cost"] < first.details["expected_cost"]

    train_on(spark, config, feature_rows(1, shuffled_training_labels=True))
    worse = evaluate.run(spark, config)
    assert worse.details["decision"] == "refused"
    assert aliases(config) == {"champion": "2", "challenger": "3"}
    refused = client.get_model_version(name, "3")
    assert refused.tags["gate_decision"] == "refused"
    assert "does not beat champion v2" in refused.tags["gate_reason"]
    run = mlflow.get_run(refused.tags["evaluate_run_id"])
    assert run.data.tags["lakeforge.gate.decision"] == "refused"
    assert run.data.tags["lakeforge.input.flight_features.version"] == "2"
    assert run.data.metrics["champion_expected_cost"] < run.data.metrics["challenger_expected_cost"]


def test_gate_refuses_a_model_with_a_flagged_slice(spark, tmp_path):
    config = flights_config(tmp_path, **SETTINGS, **{"evaluation.slices.metric": "expected_cost",
                                                      "evaluation.slices.max_gap": 0.2})
    configure_mlflow(config)
    train_on(spark, config, feature_rows(2, shuffled_training_labels=False, random_carrier="ZZ"))
    result = evaluate.run(spark, config)
    assert result.details["decision"] == "refused"
    assert aliases(config) == {"challenger": "1"}
    reason = mlflow.MlflowClient().get_model_version(config.model.registered_name, "1").tags["gate_reason"]
    assert reason.startswith("slices worse than overall: carrier=ZZ")


GATE = GateSettings(min_improvement=0.05)


@pytest.mark.parametrize("challenger, champion, promote, reason", [
    (ModelEvaluation("2", "expected_cost", 0.50), ModelEvaluation("1", "expected_cost", 0.60), True, "beats champion v1"),
    (ModelEvaluation("2", "expected_cost", 0.57), ModelEvaluation("1", "expected_cost", 0.60), False, "by min_improvement 0.05"),
    (ModelEvaluation("2", "expected_cost", 0.40, violations=("recall 0.4 < min_recall 0.8",)), None, False,
     "constraint violated: recall 0.4"),
    (ModelEvaluation("2", "expected_cost", 0.40, flagged_slices=("carrier=ZZ (gap 0.3)",)), None, False, "carrier=ZZ"),
    (ModelEvaluation("1", "expected_cost", 0.40), None, True, "no champion yet"),
])
def test_gate_decision(challenger, champion, promote, reason):
    decision = decide(challenger, champion, GATE)
    assert decision.promote is promote
    assert reason in decision.reason


def test_a_greater_is_better_metric_promotes_the_higher_value():
    champion = ModelEvaluation("1", "r2", 0.60, greater_is_better=True)
    assert decide(ModelEvaluation("2", "r2", 0.70, greater_is_better=True), champion, GATE).promote
    refused = decide(ModelEvaluation("2", "r2", 0.50, greater_is_better=True), champion, GATE)
    assert not refused.promote and "r2 0.5000 does not beat champion v1 (0.6000)" in refused.reason


def test_flagged_slices_can_be_allowed():
    challenger = ModelEvaluation("2", "expected_cost", 0.40, flagged_slices=("carrier=ZZ (gap 0.3)",))
    assert decide(challenger, None, GateSettings(refuse_flagged_slices=False)).promote
