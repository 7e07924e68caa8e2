"""Gather what a pipeline run recorded into report sections.

Sources: the run state (``<storage_root>/runs/<run_id>.json``), the MLflow runs tagged with the run id
(metrics, params, tags, artifacts: whatever each step logged, shown by name) and the Delta tables the
steps wrote, read with delta-rs and DuckDB at the versions the steps logged.
"""
from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Run

from lakeforge import mlflow_store
from lakeforge.config import RESERVED_COLUMNS, LakeforgeConfig
from lakeforge.dag import RunState, StepRecord
from lakeforge.lakehouse import existing_tables, open_table, query
from lakeforge.report.figures import curve_svg, heatmap_svg, lines_svg
from lakeforge.report.model import Figure, Section, Table
from lakeforge.runs import mlflow_runs

__all__ = ["STEP_TITLES", "collect_sections", "step_runs"]

STEP_TITLES = {"ingest": "Ingest", "features": "Features", "train": "Training", "evaluate": "Evaluation",
               "score": "Scoring", "monitor": "Monitoring"}
TOP_REASONS = 5


def step_runs(config: LakeforgeConfig, run_id: str) -> dict[str, Run]:
    """The newest MLflow run of each step of pipeline run `run_id`, by step name."""
    return {run.data.tags["lakeforge.step"]: run for run in mlflow_runs(config, run_id) if "lakeforge.step" in run.data.tags
            if "lakeforge.step" in run.data.tags}


def _tables_of(run: Run, role: str) -> dict[str, int]:
    prefix, suffix = f"lakeforge.{role}.", ".version"
    return {k[len(prefix):-len(suffix)]: int(v) for k, v in run.data.tags.items()
            if k.startswith(prefix) and k.endswith(suffix)}


def _versions_table(run: Run) -> Table:
    rows = [[role, name, version] for role in ("input", "output") for name, version in sorted(_tables_of(run, role).items())]
    return Table("Table versions read and written", ["role", "table", "version"], rows)


def _metrics_table(run: Run, title: str = "Metrics", exclude: Callable[[str], bool] = lambda _: False) -> Table:
    rows = [[name, value] for name, value in sorted(run.data.metrics.items()) if not exclude(name)]
    return Table(title, ["metric", "value"], rows)


def _params_table(run: Run) -> Table:
    return Table("Parameters", ["parameter", "value"], [[k, v] for k, v in sorted(run.data.params.items())])


def _artifact(config: LakeforgeConfig, run: Run, path: str) -> Path | None:
    """A local copy of artifact `path` of `run`, or None if the run did not log it."""
    client = mlflow_store.client(config)
    try:
        return Path(client.download_artifacts(run.info.run_id, path, tempfile.mkdtemp(prefix="lakeforge-report-")))
    except (mlflow.exceptions.MlflowException, OSError):
        return None


def _logged_table(config: LakeforgeConfig, run: Run, path: str) -> pd.DataFrame | None:
    """A table logged with ``mlflow.log_table``, or None."""
    local = _artifact(config, run, path)
    if local is None:
        return None
    payload = json.loads(local.read_text())
    return pd.DataFrame(payload["data"], columns=payload["columns"])


def _frame_table(title: str, frame: pd.DataFrame, highlight_column: str | None = None) -> Table:
    frame = frame.reset_index(drop=True)
    highlight = set(frame.index[frame[highlight_column].astype(bool)]) if highlight_column else set()
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return Table(title, list(frame.columns), rows, highlight)


def _ingest(section: Section, run: Run, config: LakeforgeConfig) -> None:
    from lakeforge.ingest import bronze_table, quarantine_table

    metrics, outputs = run.data.metrics, _tables_of(run, "output")
    rows = []
    for source in config.sources:
        counts = [metrics.get(f"{source}.rows_{kind}") for kind in ("read", "written", "quarantined")]
        rows.append([source, *[None if c is None else int(c) for c in counts]])
    section.tables.append(Table("Rows per source", ["source", "read", "written", "quarantined"], rows))
    tables = existing_tables(config)
    rule_rows, reasons = [], []
    for source in config.sources:
        table, version = bronze_table(source), outputs.get(bronze_table(source))
        if version is None or "quality_metrics" not in tables:
            continue
        results = query("SELECT rule, metric, value, status, expected, note, batch_id FROM quality_metrics "
                        "WHERE \"table\" = ? AND version = ? ORDER BY rule, metric", config, [table, version])
        rule_rows += [[table, *row[:-1]] for row in results.itertuples(index=False)]
        quarantine = quarantine_table(source)
        if results.empty or quarantine not in tables:
            continue
        top = query(f"SELECT reason, count(*) AS rows, any_value(_raw) AS example FROM "
                    f"(SELECT unnest(_reasons) AS reason, _raw FROM {quarantine} WHERE starts_with(_row_id, ?)) "
                    f"GROUP BY reason ORDER BY rows DESC, reason LIMIT {TOP_REASONS}", config,
                    [f"{results['batch_id'].iloc[0]}/"])
        reasons += [[source, *row] for row in top.itertuples(index=False)]
    section.tables.append(Table("Top quarantine reasons, with an example row", ["source", "reason", "rows", "example"],
                                reasons, note="" if reasons else "No row was quarantined."))
    status_column = 4
    failing = {i for i, row in enumerate(rule_rows) if row[status_column] != "pass"}
    section.tables.append(Table("Rule results", ["table", "rule", "metric", "value", "status", "expected", "note"],
                                rule_rows, failing))


def _features(section: Section, run: Run, config: LakeforgeConfig) -> None:
    outputs = _tables_of(run, "output")
    dataset, version = config.dataset.table, outputs.get(config.dataset.table)
    if version is None:
        section.notes.append(f"The run logged no version of {dataset}.")
        return
    columns = {f.name for f in open_table(config, dataset, version).schema().fields}
    rows = []
    for view_name, view in config.features.items():
        if view_name not in outputs:
            continue
        view_columns = [f.name for f in open_table(config, view_name, outputs[view_name]).schema().fields]
        features = [c for c in view_columns if c in columns and c not in RESERVED_COLUMNS and c not in view.keys]
        found = " OR ".join(f'"{c}" IS NOT NULL' for c in features) or "false"
        counts = query(f"SELECT (SELECT count(*) FROM {view_name}@v{outputs[view_name]}) AS view_rows, "
                       f"avg(CASE WHEN {found} THEN 1.0 ELSE 0.0 END) AS found FROM {dataset}@v{version}", config)
        rows.append([view_name, view.kind, int(counts["view_rows"].iloc[0]), ", ".join(features),
                     round(float(counts["found"].iloc[0] or 0.0), 4)])
    section.tables.append(Table(f"Feature views joined onto {dataset} v{version}",
                                ["view", "kind", "view rows", "features", "found rate"], rows))
    section.tables.append(_versions_table(run))


def _train(section: Section, run: Run, config: LakeforgeConfig) -> None:
    params = run.data.params
    section.facts["estimator"] = params.get("estimator") or params.get("model") or "not logged"
    section.tables += [_metrics_table(run), _params_table(run), _versions_table(run)]


def _evaluate(section: Section, run: Run, config: LakeforgeConfig) -> None:
    tags = run.data.tags
    section.facts.update({"gate decision": tags.get("lakeforge.gate.decision"),
                          "reason": tags.get("lakeforge.gate.reason"),
                          "challenger version": tags.get("lakeforge.gate.challenger_version"),
                          "champion version": tags.get("lakeforge.gate.champion_version")})
    sweep = _logged_table(config, run, "threshold_sweep_challenger.json")
    if sweep is not None:
        x = sweep.columns[0]
        chosen = run.data.metrics.get(f"challenger_{x}")
        section.figures.append(Figure(f"Challenger: metrics by {x} (dashed: the chosen {x})",
                                      svg=curve_svg(sweep, x, chosen)))
    section.tables.append(_metrics_table(run))
    slices = _logged_table(config, run, "slices_challenger.json")
    if slices is not None:
        flagged = "flagged" if "flagged" in slices.columns else None
        section.tables.append(_frame_table("Challenger by slice (flagged rows highlighted)", slices, flagged))
    section.tables.append(_versions_table(run))


def _score(section: Section, run: Run, config: LakeforgeConfig) -> None:
    section.tables += [_metrics_table(run), _params_table(run), _versions_table(run)]


def _monitor(section: Section, run: Run, config: LakeforgeConfig) -> None:
    tags, monitor_id = run.data.tags, run.info.run_id
    section.facts.update({"retrain trigger": tags.get("lakeforge.monitor.trigger"),
                          "reasons": tags.get("lakeforge.monitor.reasons") or "none"})
    settings, tables = config.monitor, existing_tables(config)
    if settings.drift_table in tables:
        drift = query(f"SELECT feature, \"window\", value / threshold AS ratio FROM {settings.drift_table} "
                      f"WHERE monitor_run_id = ? AND kind = 'feature' AND decisive", config, [monitor_id])
        if not drift.empty:
            grid = drift.pivot_table(index="feature", columns="window", values="ratio", aggfunc="max")
            grid = grid.loc[grid.max(axis=1).sort_values(ascending=False).index]
            section.figures.append(Figure("Drift per window and feature (decisive statistic / its threshold; "
                                          ">= 1 is drift)", svg=heatmap_svg(grid, "statistic / threshold")))
    for artifact in mlflow_store.client(config).list_artifacts(monitor_id, "monitor"):
        local = _artifact(config, run, artifact.path)
        if local is not None and local.suffix == ".png":
            uri = "data:image/png;base64," + base64.b64encode(local.read_bytes()).decode()
            section.figures.append(Figure("Histograms of the most drifted features, reference vs latest window",
                                          png_uri=uri))
    if settings.live_metrics_table in tables:
        live = query(f"SELECT * EXCLUDE (monitor_run_id, computed_at, model_name, model_version) FROM "
                     f"{settings.live_metrics_table} WHERE monitor_run_id = ? ORDER BY \"window\"", config, [monitor_id])
        shown = [c for c in live.columns if c != "window" and pd.api.types.is_float_dtype(live[c])]
        if not live.empty and shown:
            section.figures.append(Figure("Live metrics over time (per window)", svg=lines_svg(live, "window", shown)))
            section.tables.append(_frame_table("Live metrics per window", live))
    section.tables.append(_metrics_table(run, "Metrics (last window)"))


BUILDERS: dict[str, Callable[[Section, Run, LakeforgeConfig], None]] = {
    "ingest": _ingest, "features": _features, "train": _train, "evaluate": _evaluate, "score": _score,
    "monitor": _monitor,
}


def _section(step: str, record: StepRecord | None, run: Run | None, config: LakeforgeConfig) -> Section:
    section = Section(step, STEP_TITLES.get(step, step), record.status if record else "not run")
    if record is None:
        section.notes.append(f"The {step} step did not run in this pipeline run.")
        return section
    if run is None:
        section.notes.append("No MLflow run of this step is tagged with the run id.")
    elif step in BUILDERS:
        try:
            BUILDERS[step](section, run, config)
        except Exception as exc:  # a report of what could be gathered beats no report of a finished run
            section.notes.append(f"Part of this section could not be gathered: {type(exc).__name__}: {exc}")
    shown = {str(v) for v in section.facts.values()}
    details = {k: v for k, v in record.details.items() if str(v) not in shown}  # what the step printed, once
    section.facts = {"seconds": record.seconds, "rows in": record.rows_in, "rows out": record.rows_out,
                     **section.facts, **details, **({"MLflow run": run.info.run_id} if run else {})}
    return section


def collect_sections(config: LakeforgeConfig, state: RunState, steps: list[str]) -> list[Section]:
    """One section per step of `steps` (those that did not run say so)."""
    runs = step_runs(config, state.run_id)
    return [_section(step, state.steps.get(step), runs.get(step), config) for step in steps]
