"""The `evaluate` step: score the challenger (and the champion) on pinned evaluation data, compute the
task's metrics (binary: with the cost-optimal threshold under the constraints), slices, and promote or
refuse the challenger on the primary metric (`evaluation.primary_metric`).
"""
from __future__ import annotations

import math

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.evaluation.gate import GateDecision, ModelEvaluation, decide
from lakeforge.evaluation.slices import flagged_slices, slice_metrics
from lakeforge.models import ScoringModel, load_registered
from lakeforge.results import StepResult
from lakeforge.split import hash_split
from lakeforge.tables import TableVersion, read_pinned
from lakeforge.tracking import TAG_PREFIX, log_tables, step_run
from lakeforge.tasks import task_for
from lakeforge.tasks.catalog import DEFAULT_SLICE_METRIC
from lakeforge.train import decision_tags
from lakeforge.windows import in_window, no_rows


def evaluation_rows(spark: SparkSession, config: LakeforgeConfig) -> tuple[DataFrame, TableVersion]:
    """The pinned evaluation rows: `windows.evaluate` if set, else the validation split of `windows.train`."""
    features, version = read_pinned(spark, config.dataset.table, config.table_path(config.dataset.table))
    if config.windows.evaluate:
        return in_window(features, config.windows.evaluate), version
    in_train = in_window(features, config.windows.train)
    split = hash_split(in_train, KEY, config.split.validation_fraction, config.seed)
    return split.where("is_validation").drop("is_validation"), version


def scored_rows(rows: DataFrame, model: ScoringModel, config: LakeforgeConfig) -> DataFrame:
    """The model's outputs and `label` per evaluation row with a label, plus the slice columns."""
    context = rows.where(F.col(LABEL).isNotNull()).select(
        F.col(KEY).cast("string").alias(KEY), LABEL, *config.evaluation.slices.columns)
    return model.predict(rows, KEY).join(context, KEY)


def evaluate_model(scored: DataFrame, config: LakeforgeConfig,
                   role: str) -> tuple[dict[str, float], dict[str, float], tuple[str, ...], pd.DataFrame]:
    """The task's metrics, the tuned decision (binary: threshold), its violations and the slice table;
    the tuning's curve (binary: the threshold sweep) is logged for the report."""
    task = task_for(config.task.type, config.evaluation.objective)
    if scored.isEmpty():
        window = "evaluate" if config.windows.evaluate else "train"
        raise no_rows("evaluate", window, getattr(config.windows, window), f"{config.dataset.table} (rows with a label)")
    decision, decision_metrics, violations, curve = task.tune(scored)
    if curve is not None:
        mlflow.log_table(curve, artifact_file=f"threshold_sweep_{role}.json")  # the report's cost curve
    metrics = task.spark_metrics(scored, **decision) | decision_metrics
    slice_metric = config.evaluation.slices.metric or DEFAULT_SLICE_METRIC[task.type]
    slices = slice_metrics(scored, task.slice_aggregates(**decision), config.evaluation.slices, slice_metric,
                           task.greater_is_better(slice_metric))
    return metrics, decision, violations, slices


def _alias_version(client: mlflow.MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def _evaluate_version(version: ModelVersion, rows: DataFrame, config: LakeforgeConfig,
                      role: str) -> tuple[ModelEvaluation, dict[str, float]]:
    """Score and evaluate one registered version, logging its metrics and slices under `role`."""
    scored = scored_rows(rows, load_registered(version, config.model, config.task.type), config).persist()
    try:
        metrics, decision, violations, slices = evaluate_model(scored, config, role)
    finally:
        scored.unpersist()
    mlflow.log_metrics({f"{role}_{k}": v for k, v in metrics.items() if not math.isnan(v)})
    mlflow.log_table(slices, artifact_file=f"slices_{role}.json")
    metric = config.primary_metric
    if metric not in metrics:
        raise StepError(f"evaluate: the primary metric '{metric}' was not computed ({', '.join(sorted(metrics))}); "
                        f"set evaluation.primary_metric")
    evaluation = ModelEvaluation(str(version.version), metric, metrics[metric],
                                 task_for(config.task.type).greater_is_better(metric), violations,
                                 tuple(flagged_slices(slices)), decision)
    return evaluation, metrics


def apply_decision(client: mlflow.MlflowClient, config: LakeforgeConfig, challenger: ModelEvaluation,
                   decision: GateDecision, run_id: str) -> None:
    """Tag the challenger version with its threshold and the decision; move the aliases if promoted."""
    name, gate = config.model.registered_name, config.evaluation.gate
    tags = {**decision_tags(challenger.decision), "evaluate_run_id": run_id,
            "gate_decision": "promoted" if decision.promote else "refused", "gate_reason": decision.reason}
    for key, value in tags.items():
        client.set_model_version_tag(name, challenger.version, key, value)
    if decision.promote:
        client.set_registered_model_alias(name, config.model.alias, challenger.version)
        client.delete_registered_model_alias(name, gate.challenger_alias)


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Evaluate the `challenger` alias against the `champion` alias and apply the gate."""
    name, gate = config.model.registered_name, config.evaluation.gate
    with step_run(config, "evaluate") as active:
        client = mlflow.MlflowClient()
        challenger_version = _alias_version(client, name, gate.challenger_alias)
        if challenger_version is None:
            raise StepError(f"evaluate: no model '{name}' with alias '{gate.challenger_alias}'; run the train step first")
        champion_version = _alias_version(client, name, config.model.alias)
        rows, version = evaluation_rows(spark, config)
        needed = [KEY, LABEL, *config.evaluation.slices.columns]
        missing = [c for c in needed if c not in rows.columns]
        if missing:
            raise StepError(f"evaluate: columns {missing} are not in dataset table {version.path} "
                            "(see evaluation.slices.columns)")
        log_tables([version], "input")
        challenger, metrics = _evaluate_version(challenger_version, rows, config, "challenger")
        champion = None if champion_version is None else _evaluate_version(champion_version, rows, config, "champion")[0]
        decision = decide(challenger, champion, gate)
        mlflow.set_tags({f"{TAG_PREFIX}.gate.decision": "promoted" if decision.promote else "refused",
                         f"{TAG_PREFIX}.gate.reason": decision.reason,
                         f"{TAG_PREFIX}.gate.challenger_version": challenger.version,
                         f"{TAG_PREFIX}.gate.champion_version": champion.version if champion else "none"})
        apply_decision(client, config, challenger, decision, active.info.run_id)
        print(f"[lakeforge] evaluate: {name} v{challenger.version} "
              f"{'promoted to' if decision.promote else 'not promoted to'} @{config.model.alias}: {decision.reason}",
              flush=True)
    return StepResult("evaluate", rows_in=int(metrics["rows"]),
                      rows_out=1, details={"model": f"{name} v{challenger.version}",
                                           "decision": "promoted" if decision.promote else "refused",
                                           **challenger.decision,
                                           challenger.metric: round(challenger.value, 4),
                                           "input": f"{version.name} v{version.version}"})
