"""One self-contained HTML report per pipeline run, written under the storage root and logged to MLflow.

``write_run_report(config, run_id)`` gathers what the run's steps recorded (`collect`), renders it
with jinja2 (`render`), writes ``<storage_root>/reports/<run_id>.html`` through the storage layer
(`output`) and logs it to the pipeline run's parent MLflow run.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from lakeforge import mlflow_store
from lakeforge.config import LakeforgeConfig
from lakeforge.report.collect import STEP_TITLES, collect_sections
from lakeforge.report.output import write_output
from lakeforge.report.render import render_html
from lakeforge.runs import REPORTS_DIR, RUN_ID_TAG, load_run, mlflow_runs, report_file

__all__ = ["REPORT_STEP", "log_report", "write_run_report"]

REPORT_STEP = "report"


def log_report(config: LakeforgeConfig, run_id: str, html: str, parent_run: str | None = None) -> str:
    """Log the report of `run_id` to `parent_run` (the pipeline's parent MLflow run) or, without one, to a
    run of its own tagged with the run id (created on first use); return that run's id."""
    from lakeforge.tracking import configure_mlflow

    experiment_id = configure_mlflow(config)
    client = mlflow_store.client(config)
    existing = [r for r in mlflow_runs(config, run_id) if r.data.tags.get("lakeforge.step") == REPORT_STEP]
    if parent_run is not None:
        report_run = parent_run
    elif existing:
        report_run = existing[-1].info.run_id
    else:
        tags = {RUN_ID_TAG: run_id, "lakeforge.step": REPORT_STEP, "mlflow.runName": f"report {run_id}"}
        report_run = client.create_run(experiment_id, tags=tags).info.run_id
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / Path(report_file(run_id)).name
        local.write_text(html)
        client.log_artifact(report_run, str(local), REPORTS_DIR)
    if parent_run is None:
        client.set_terminated(report_run)
    return report_run


def write_run_report(config: LakeforgeConfig, run_id: str, parent_run: str | None = None) -> str:
    """Write the HTML report of pipeline run `run_id` beside the tables, log it to MLflow (to
    `parent_run` if given); return its location."""
    state = load_run(config, run_id)
    steps = [*STEP_TITLES, *[s for s in state.steps if s not in STEP_TITLES]]
    html = render_html(config, state, collect_sections(config, state, steps))
    location = write_output(config, report_file(run_id), html)
    log_report(config, run_id, html, parent_run)
    return location
