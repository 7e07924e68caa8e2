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


def evaluate_trigger(policy: RetrainTrigger, drift_share: dict[str, float], metric: dict[str, float],
                     greater_is_better: bool = True) -> TriggerDecision:
    """Fire when the latest window's drifted-feature share reaches `policy.drift_share`, or when the
    live `policy.metric` was worse than `policy.worse_than` (below it when greater is better, above it
    otherwise) in at least `breaches` of the last `lookback` windows.

    Both histories map a window label to its value; labels sort in time order.
    """
    reasons = []
    if policy.drift_share is not None and drift_share:
        latest = max(drift_share)
        if drift_share[latest] >= policy.drift_share:
            reasons.append(f"drifted feature share {drift_share[latest]:.2f} >= {policy.drift_share} in {latest}")
    if policy.metric is not None and metric:
        recent = [metric[w] for w in sorted(metric)[-policy.lookback:]]
        worse = [v < policy.worse_than if greater_is_better else v > policy.worse_than for v in recent]
        if sum(worse) >= policy.breaches:
            side = "below" if greater_is_better else "above"
            reasons.append(f"live {policy.metric} {side} {policy.worse_than} in {sum(worse)} of the last "
                           f"{len(recent)} windows")
    return TriggerDecision(bool(reasons), tuple(reasons))
