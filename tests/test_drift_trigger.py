"""The retraining trigger on crafted drift and live-metric histories."""
from __future__ import annotations

import pytest

from lakeforge.config import RetrainTrigger, parse_config
from lakeforge.errors import ConfigError
from lakeforge.drift.trigger import evaluate_trigger

POLICY = RetrainTrigger(drift_share=0.5, metric="auc", worse_than=0.65, breaches=2, lookback=5)
CALM = {"month 04": 0.1, "month 05": 0.2, "month 06": 0.3}
GOOD_AUC = {"month 04": 0.72, "month 05": 0.70, "month 06": 0.69}


def test_quiet_histories_do_not_fire():
    decision = evaluate_trigger(POLICY, CALM, GOOD_AUC)
    assert not decision.fired and decision.reasons == ()


def test_drift_share_fires_on_the_latest_window_only():
    assert not evaluate_trigger(POLICY, {**CALM, "month 04": 0.9}, GOOD_AUC).fired
    decision = evaluate_trigger(POLICY, {**CALM, "month 06": 0.5}, GOOD_AUC)
    assert decision.fired and decision.reasons == ("drifted feature share 0.50 >= 0.5 in month 06",)


def test_auc_fires_on_two_breaches_in_the_last_five_windows():
    history = {f"month {m:02d}": 0.7 for m in range(1, 10)}
    one_breach = {**history, "month 07": 0.6}
    assert not evaluate_trigger(POLICY, CALM, one_breach).fired
    two_breaches = {**one_breach, "month 09": 0.64}
    decision = evaluate_trigger(POLICY, CALM, two_breaches)
    assert decision.fired and decision.reasons == ("live auc below 0.65 in 2 of the last 5 windows",)


def test_breaches_older_than_the_lookback_do_not_count():
    history = {f"month {m:02d}": 0.7 for m in range(1, 10)}
    old_breaches = {**history, "month 01": 0.5, "month 04": 0.5}
    assert not evaluate_trigger(POLICY, CALM, old_breaches).fired


def test_disabled_rules_never_fire():
    policy = RetrainTrigger(drift_share=None)
    assert not evaluate_trigger(policy, {"month 12": 1.0}, {"month 11": 0.1, "month 12": 0.1}).fired


def test_policy_is_validated_with_the_key_named():
    with pytest.raises(ConfigError, match="monitor.trigger"):
        parse_config({"storage_root": "/tmp/x", "sources": {}, "model": {"numeric_features": []},
                      "monitor": {"trigger": {"breaches": 6, "lookback": 5}}})


def test_a_lower_is_better_metric_fires_when_above_its_limit():
    policy = RetrainTrigger(drift_share=None, metric="rmse", worse_than=40.0, breaches=2, lookback=5)
    history = {f"month {m:02d}": 35.0 for m in range(1, 6)}
    assert not evaluate_trigger(policy, CALM, {**history, "month 05": 45.0}, greater_is_better=False).fired
    decision = evaluate_trigger(policy, CALM, {**history, "month 04": 41.0, "month 05": 45.0}, greater_is_better=False)
    assert decision.fired and decision.reasons == ("live rmse above 40.0 in 2 of the last 5 windows",)


def test_trigger_metric_must_be_a_metric_of_the_task(tmp_path):
    from conftest import flights_config

    with pytest.raises(ConfigError, match=r"monitor.trigger.metric: 'rmse' is not a binary_classification metric"):
        flights_config(tmp_path, **{"monitor.trigger.metric": "rmse", "monitor.trigger.worse_than": 3})
