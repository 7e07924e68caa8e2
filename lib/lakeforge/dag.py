"""The pipeline as a DAG: step order from declared dependencies, and resumable run state.

A run is identified by a run id. Each finished step is recorded in ``<storage_root>/runs/<run_id>.json``,
on the tables' filesystem (`lakeforge.storage`), so a run started on an ephemeral driver resumes too.
Running the same run id again skips the steps that succeeded, so a failed run resumes at the failed
step and a finished run changes nothing.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field

from lakeforge.config import LakeforgeConfig, StepSettings
from lakeforge.errors import ConfigError
from lakeforge.names import check_run_id
from lakeforge.results import StepResult
from lakeforge.storage import Storage, storage_for


def declared_steps(config: LakeforgeConfig, registered: list[str]) -> dict[str, StepSettings]:
    """The configured steps, or by default every registered step chained in registry order."""
    if config.pipeline.steps is not None:
        return dict(config.pipeline.steps)
    return {name: StepSettings(depends_on=registered[i - 1:i]) for i, name in enumerate(registered)}


def plan_steps(config: LakeforgeConfig, defaults: list[str], optional: list[str],
               wanted: list[str] | None = None) -> tuple[dict[str, StepSettings], list[str]]:
    """The declared steps (`defaults` chained unless pipeline.steps says otherwise, plus any `optional`
    step named in `wanted`) and the `wanted` ones (None: all declared) in DAG order."""
    declared = declared_steps(config, defaults)
    for step in wanted or []:
        if step in optional:
            declared.setdefault(step, StepSettings())
    return declared, select_steps(step_order(declared, [*defaults, *optional]), wanted)


def step_order(steps: dict[str, StepSettings], registered: list[str]) -> list[str]:
    """Topological order of `steps`, ties kept in declaration order; errors name the bad step."""
    for name, spec in steps.items():
        if name not in registered:
            raise ConfigError(f"pipeline.steps.{name}: unknown step; known steps: {', '.join(registered)}")
        for dependency in spec.depends_on:
            if dependency not in steps:
                raise ConfigError(f"pipeline.steps.{name}.depends_on: '{dependency}' is not a declared step")
    order: list[str] = []
    while len(order) < len(steps):
        ready = [n for n, s in steps.items() if n not in order and all(d in order for d in s.depends_on)]
        if not ready:
            stuck = sorted(set(steps) - set(order))
            raise ConfigError(f"pipeline.steps: dependency cycle among {', '.join(stuck)}")
        order.append(ready[0])
    return order


def select_steps(order: list[str], wanted: list[str] | None) -> list[str]:
    """`wanted` steps in DAG order (all of them when None)."""
    if wanted is None:
        return order
    unknown = [s for s in wanted if s not in order]
    if unknown:
        raise ConfigError(f"step(s) {', '.join(unknown)} are not in the pipeline ({', '.join(order)})")
    return [s for s in order if s in wanted]


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


@dataclass
class StepRecord:
    status: str
    seconds: float
    rows_in: int = 0
    rows_out: int = 0
    details: dict[str, object] = field(default_factory=dict)
    finished_at: str = ""


@dataclass
class RunState:
    """Which steps of a run succeeded or failed, persisted as JSON beside the tables after every step."""

    run_id: str
    path: str
    storage: Storage = field(repr=False)
    steps: dict[str, StepRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, config: LakeforgeConfig, run_id: str) -> "RunState":
        """The state of `run_id` under `config`'s storage root (empty if the run is new)."""
        check_run_id(run_id)
        path, storage = config.location("runs", f"{run_id}.json"), storage_for(config)
        text = storage.read_text(path)
        recorded = json.loads(text)["steps"] if text is not None else {}
        return cls(run_id, path, storage, {name: StepRecord(**record) for name, record in recorded.items()})

    def succeeded(self, step: str) -> bool:
        return step in self.steps and self.steps[step].status == "succeeded"

    def record(self, step: str, status: str, result: StepResult | None = None, seconds: float = 0.0,
               error: str = "") -> None:
        details = dict(result.details) if result else {"error": error}
        self.steps[step] = StepRecord(
            status=status, seconds=round(result.seconds if result else seconds, 3),
            rows_in=result.rows_in if result else 0, rows_out=result.rows_out if result else 0,
            details={k: str(v) for k, v in details.items()},
            finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        payload = {"run_id": self.run_id, "steps": {name: asdict(r) for name, r in self.steps.items()}}
        self.storage.write_text(self.path, json.dumps(payload, indent=2))
