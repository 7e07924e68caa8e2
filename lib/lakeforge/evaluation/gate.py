"""Champion/challenger gate: the decision, given both models' evaluations on the same pinned data."""
from __future__ import annotations

from dataclasses import dataclass, field

from lakeforge.config import GateSettings


@dataclass(frozen=True)
class ModelEvaluation:
    """What the gate needs to know about one model version evaluated on the pinned data: its value of
    the primary `metric` (better when greater if `greater_is_better`), and what it violates."""

    version: str
    metric: str
    value: float
    greater_is_better: bool = False
    violations: tuple[str, ...] = ()
    flagged_slices: tuple[str, ...] = ()
    decision: dict[str, float] = field(default_factory=dict)

    def improvement_over(self, other: "ModelEvaluation") -> float:
        """How much better this model's metric is than `other`'s (positive: better)."""
        return self.value - other.value if self.greater_is_better else other.value - self.value


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide(challenger: ModelEvaluation, champion: ModelEvaluation | None, settings: GateSettings) -> GateDecision:
    """Promote the challenger only if it breaks no constraint or slice rule and beats the champion by the margin."""
    if challenger.violations:
        return GateDecision(False, "constraint violated: " + "; ".join(challenger.violations))
    if settings.refuse_flagged_slices and challenger.flagged_slices:
        return GateDecision(False, "slices worse than overall: " + ", ".join(challenger.flagged_slices))
    if champion is None:
        return GateDecision(True, "no champion yet; the challenger meets every constraint")
    name, improvement = challenger.metric, challenger.improvement_over(champion)
    if improvement <= 0 or improvement < settings.min_improvement:
        return GateDecision(False, f"{name} {challenger.value:.4f} does not beat champion v{champion.version} "
                                   f"({champion.value:.4f}) by min_improvement {settings.min_improvement}")
    return GateDecision(True, f"{name} {challenger.value:.4f} beats champion v{champion.version} "
                              f"({champion.value:.4f}) by {improvement:.4f}")
