"""What a pipeline step reports when it finishes."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepResult:
    """Rows in and out of a step, plus named figures worth printing (versions, metrics)."""

    step: str
    rows_in: int
    rows_out: int
    details: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
