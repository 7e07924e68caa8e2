"""Pipeline runs as recorded in ``<storage_root>/runs/<run_id>.json``: listing, one run's steps, where its report is."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.config import LakeforgeConfig
from lakeforge.dag import RunState, StepRecord
from lakeforge.errors import LakeforgeError
from lakeforge.storage import storage_for

if TYPE_CHECKING:
    from mlflow.entities import Run

__all__ = ["REPORTS_DIR", "RUN_ID_TAG", "RunSummary", "format_table", "list_runs", "load_run", "mlflow_runs",
           "report_file", "report_path", "step_rows"]

REPORTS_DIR = "reports"
RUN_ID_TAG = "lakeforge.run_id"  # lakeforge.tracking tags every step's MLflow run with it


@dataclass(frozen=True)
class RunSummary:
    """One run: when it started (first step's start), steps done and failed, seconds from start to last finish."""

    run_id: str
    started: dt.datetime | None
    done: int
    failed: int
    seconds: float

    @classmethod
    def of(cls, state: RunState) -> "RunSummary":
        spans = [(_finished(r) - dt.timedelta(seconds=r.seconds), _finished(r)) for r in state.steps.values()
                 if r.finished_at]
        started = min((s for s, _ in spans), default=None)
        ended = max((e for _, e in spans), default=None)
        statuses = [r.status for r in state.steps.values()]
        seconds = (ended - started).total_seconds() if started and ended else 0.0
        return cls(state.run_id, started, statuses.count("succeeded"), statuses.count("failed"), seconds)


def _finished(record: StepRecord) -> dt.datetime:
    return dt.datetime.fromisoformat(record.finished_at)


def list_runs(config: LakeforgeConfig, limit: int = 20) -> list[RunSummary]:
    """The `limit` most recently started runs, newest first."""
    entries = storage_for(config).children(config.location("runs"))
    states = [RunState.load(config, name.removesuffix(".json")) for name, is_dir in entries.items()
              if name.endswith(".json") and not is_dir]
    summaries = [RunSummary.of(s) for s in states]
    oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(summaries, key=lambda s: (s.started or oldest, s.run_id), reverse=True)[:limit]


def load_run(config: LakeforgeConfig, run_id: str) -> RunState:
    """The recorded state of `run_id`; a LakeforgeError naming the runs folder if there is none."""
    state = RunState.load(config, run_id)
    if not state.storage.exists(state.path):
        raise LakeforgeError(f"no run '{run_id}' in {config.location('runs')} (see `lakeforge runs`)")
    return state


def report_file(run_id: str) -> str:
    """The HTML report of `run_id`, relative to the storage root (see `lakeforge.report`)."""
    return f"{REPORTS_DIR}/{run_id}.html"


def report_path(config: LakeforgeConfig, run_id: str) -> str | None:
    """Where the HTML report of `run_id` is, None if it was not written."""
    location = config.location(report_file(run_id))
    return location if storage_for(config).exists(location) else None


def step_rows(state: RunState) -> list[tuple[str, ...]]:
    """Header and one row per step: status, seconds, rows in/out, finish time, details or error."""
    rows = [("step", "status", "seconds", "rows in", "rows out", "finished", "details")]
    for name, record in state.steps.items():
        details = "; ".join(f"{k}: {v}" for k, v in record.details.items())
        rows.append((name, record.status, f"{record.seconds:.1f}", str(record.rows_in), str(record.rows_out),
                     record.finished_at, details))
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns under a header rule (the last column is not padded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def mlflow_runs(config: LakeforgeConfig, run_id: str) -> list["Run"]:
    """The MLflow runs tagged with pipeline run `run_id`, oldest first (none if the experiment does not exist)."""
    from lakeforge import mlflow_store

    client = mlflow_store.client(config)
    with mlflow_store.reachable(config):
        experiment = client.get_experiment_by_name(config.mlflow.experiment)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{run_id}'",
                              order_by=["attributes.start_time ASC"], max_results=1000)
