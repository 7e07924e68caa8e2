"""The retraining trigger: a policy from YAML evaluated on per-window drift and live metric histories.

Exit codes of the monitor step (``lakeforge run monitor``) for schedulers:
0 nothing to do, 3 the trigger fired and retraining is needed, 4 the trigger fired and the
monitor retrained (``monitor.trigger.retrain: true``), 2 an error (any step).
"""
from __future__ import annotations

from dataclasses import dataclass

from lakeforge.config import RetrainTrigger

EXIT_OK = 0
EXIT_RETRAIN_NEEDED = 3
EXIT_RETRAINED = 4


@dataclass(frozen=True)
class TriggerDecision:
    fired: bool
    reasons: tuple[str, ...]


def evaluate_trigger(policy: RetrainTrigger, drift_share: dict[str, float], auc: dict[str, float]) -> TriggerDecision:
    """Fire when the latest window's drifted-feature share reaches `policy.drift_share`, or when the
    live AUC was below `policy.min_auc` in at least `auc_breaches` of the last `auc_lookback` windows.

    Both histories map a window label to its value; labels sort in time order.
    """
    reasons = []
    if policy.drift_share is not None and drift_share:
        latest = max(drift_share)
        if drift_share[latest] >= policy.drift_share:
            reasons.append(f"drifted feature share {drift_share[latest]:.2f} >= {policy.drift_share} in {latest}")
    if policy.min_auc is not None and auc:
        recent = [auc[w] for w in sorted(auc)[-policy.auc_lookback:]]
        breaches = sum(value < policy.min_auc for value in recent)
        if breaches >= policy.auc_breaches:
            reasons.append(f"live AUC below {policy.min_auc} in {breaches} of the last {len(recent)} windows")
    return TriggerDecision(bool(reasons), tuple(reasons))
