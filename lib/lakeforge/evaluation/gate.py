"""Champion/challenger gate: the decision, given both models' evaluations on the same pinned data."""
from __future__ import annotations

from dataclasses import dataclass

from lakeforge.config import GateSettings


@dataclass(frozen=True)
class ModelEvaluation:
    """What the gate needs to know about one model version evaluated on the pinned data."""

    version: str
    expected_cost: float
    threshold: float
    violations: tuple[str, ...] = ()
    flagged_slices: tuple[str, ...] = ()


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
    improvement = champion.expected_cost - challenger.expected_cost
    if improvement <= 0 or improvement < settings.min_improvement:
        return GateDecision(False, f"expected cost {challenger.expected_cost:.4f} does not beat champion "
                                   f"v{champion.version} ({champion.expected_cost:.4f}) by "
                                   f"min_improvement {settings.min_improvement}")
    return GateDecision(True, f"expected cost {challenger.expected_cost:.4f} beats champion v{champion.version} "
                              f"({champion.expected_cost:.4f}) by {improvement:.4f}")
