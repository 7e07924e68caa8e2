"""One self-contained HTML report per pipeline run, written under the storage root and logged to MLflow.

``write_run_report(config, run_id)`` gathers what the run's steps recorded (`collect`), renders it
with jinja2 (`render`) and writes ``<storage_root>/reports/<run_id>.html`` (`output`).
"""
from __future__ import annotations

from pathlib import Path

import mlflow

from lakeforge.config import LakeforgeConfig
from lakeforge.report.collect import STEP_TITLES, collect_sections
from lakeforge.report.output import write_output
from lakeforge.report.render import render_html
from lakeforge.runs import REPORTS_DIR, RUN_ID_TAG, load_run, mlflow_runs, report_file

__all__ = ["REPORT_STEP", "log_report", "write_run_report"]

REPORT_STEP = "report"


def log_report(config: LakeforgeConfig, run_id: str, path: Path) -> str:
    """Log `path` to the MLflow run of the report of `run_id` (created on first use); return that run's id."""
    from lakeforge.tracking import configure_mlflow

    experiment_id = configure_mlflow(config)
    client = mlflow.MlflowClient(config.tracking_uri)
    existing = [r for r in mlflow_runs(config, run_id) if r.data.tags.get("lakeforge.step") == REPORT_STEP]
    if existing:
        report_run = existing[-1].info.run_id
    else:
        tags = {RUN_ID_TAG: run_id, "lakeforge.step": REPORT_STEP, "mlflow.runName": f"report {run_id}"}
        report_run = client.create_run(experiment_id, tags=tags).info.run_id
    client.log_artifact(report_run, str(path), REPORTS_DIR)
    client.set_terminated(report_run)
    return report_run


def write_run_report(config: LakeforgeConfig, run_id: str) -> Path:
    """Write the HTML report of pipeline run `run_id` and log it to MLflow; return its path."""
    state = load_run(config, run_id)
    steps = [*STEP_TITLES, *[s for s in state.steps if s not in STEP_TITLES]]
    html = render_html(config, state, collect_sections(config, state, steps))
    path = write_output(config, report_file(run_id), html)
    log_report(config, run_id, path)
    return path
