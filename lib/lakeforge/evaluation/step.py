"""The `evaluate` step: score the challenger (and the champion) on pinned evaluation data, pick the
cost-optimal threshold under the constraints, compute slices, and promote or refuse the challenger.
"""
from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.evaluation.gate import GateDecision, ModelEvaluation, decide
from lakeforge.evaluation.metrics import probability_metrics
from lakeforge.evaluation.objectives import ThresholdChoice, choose_threshold, score_histogram, threshold_sweep
from lakeforge.evaluation.slices import flagged_slices, slice_metrics
from lakeforge.models import ScoringModel, load_registered
from lakeforge.results import StepResult
from lakeforge.split import hash_split
from lakeforge.tables import TableVersion, read_pinned
from lakeforge.tracking import TAG_PREFIX, log_tables, step_run
from lakeforge.train import DECISION_THRESHOLD_TAG
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
    """`score` and `label` per evaluation row plus the slice columns, scored on the executors."""
    key = KEY
    scores = model.scores(rows, key)
    context = rows.select(F.col(key).cast("string").alias(key), F.col(LABEL).cast("int").alias("label"),
                          *config.evaluation.slices.columns)
    return scores.join(context, key)


def evaluate_model(scored: DataFrame, config: LakeforgeConfig,
                   role: str) -> tuple[dict[str, float], ThresholdChoice, pd.DataFrame]:
    """Standard metrics, the threshold choice and the slice table of one model's scored rows (the sweep is logged)."""
    objective = config.evaluation.objective
    histogram = score_histogram(scored, objective.score_buckets)
    if not histogram[["positives", "negatives"]].to_numpy().any():
        window = "evaluate" if config.windows.evaluate else "train"
        raise no_rows("evaluate", window, getattr(config.windows, window), config.dataset.table)
    sweep = threshold_sweep(histogram, objective.score_buckets, objective.costs)
    mlflow.log_table(sweep, artifact_file=f"threshold_sweep_{role}.json")  # the report's cost curve
    choice = choose_threshold(sweep, objective)
    slices = slice_metrics(scored, choice.threshold, objective.costs, config.evaluation.slices)
    metrics = probability_metrics(scored) | choice.metrics | {"threshold": choice.threshold}
    return metrics, choice, slices


def _alias_version(client: mlflow.MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def _evaluate_version(version: ModelVersion, rows: DataFrame, config: LakeforgeConfig,
                      role: str) -> tuple[ModelEvaluation, dict[str, float]]:
    """Score and evaluate one registered version, logging its metrics and slices under `role`."""
    scored = scored_rows(rows, load_registered(version, config.model), config).persist()
    try:
        metrics, choice, slices = evaluate_model(scored, config, role)
    finally:
        scored.unpersist()
    mlflow.log_metrics({f"{role}_{k}": v for k, v in metrics.items()})
    mlflow.log_table(slices, artifact_file=f"slices_{role}.json")
    evaluation = ModelEvaluation(str(version.version), metrics["expected_cost"], choice.threshold,
                                 choice.violations, tuple(flagged_slices(slices)))
    return evaluation, metrics


def apply_decision(client: mlflow.MlflowClient, config: LakeforgeConfig, challenger: ModelEvaluation,
                   decision: GateDecision, run_id: str) -> None:
    """Tag the challenger version with its threshold and the decision; move the aliases if promoted."""
    name, gate = config.model.registered_name, config.evaluation.gate
    tags = {DECISION_THRESHOLD_TAG: str(challenger.threshold), "evaluate_run_id": run_id,
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
                                           "threshold": challenger.threshold,
                                           "expected_cost": round(challenger.expected_cost, 4),
                                           "input": f"{version.name} v{version.version}"})
