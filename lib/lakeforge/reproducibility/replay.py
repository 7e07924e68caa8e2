"""``lakeforge replay RUN_ID``: re-run a step from its manifest and check it gives the same result.

The step runs with the recorded config and reads every input at the recorded Delta version (time
travel), in a new MLflow run tagged ``lakeforge.replay_of``. The replay is then compared with the
original: inputs read, every metric (exactly, or within a declared tolerance) and, for a trained model,
its predictions on a fixed sample of the pinned rows.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge import train
from lakeforge.config import LakeforgeConfig, parse_config
from lakeforge.errors import LakeforgeError
from lakeforge.features.dataset import KEY
from lakeforge.masking import restore_masked
from lakeforge.models import load_model
from lakeforge.reproducibility.manifest import load_manifest
from lakeforge.results import StepResult
from lakeforge.tables import pinned_versions, read_pinned, require_version
from lakeforge.tracking import replaying
from lakeforge.windows import in_window

# Steps whose only effect is an MLflow run, so replaying them cannot change any table.
REPLAYABLE_STEPS: dict[str, Callable[[SparkSession, LakeforgeConfig], StepResult]] = {"train": train.run}


class ReplayError(LakeforgeError):
    """A run cannot be replayed (no manifest, a step that writes tables, a changed config)."""


@dataclass
class ReplayReport:
    """What a replay found: `differences` in results (empty: reproduced) and `notes` on the environment."""

    original_run_id: str
    replay_run_id: str
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return not self.differences

    def describe(self) -> str:
        verdict = "reproduced" if self.reproduced else "NOT reproduced"
        lines = [f"replay {self.replay_run_id} of run {self.original_run_id}: {verdict}"]
        lines += [f"  differs: {difference}" for difference in self.differences]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def compare_inputs(original: dict[str, Any], replay: dict[str, Any]) -> list[str]:
    """Tables read at other versions or paths, or read by only one of the two runs."""
    before = {(t["name"], t["path"], t["version"]) for t in original["inputs"]}
    after = {(t["name"], t["path"], t["version"]) for t in replay["inputs"]}
    return ([f"input {name} v{version} ({path}) was not read by the replay" for name, path, version in sorted(before - after)]
            + [f"replay read {name} v{version} ({path}), the original did not" for name, path, version in sorted(after - before)])


def compare_metrics(original: dict[str, float], replay: dict[str, float], tolerance: float) -> list[str]:
    """Metrics missing from either run or further apart than `tolerance` (0: must be identical)."""
    differences = [f"metric {name} missing from the replay" for name in sorted(set(original) - set(replay))]
    differences += [f"metric {name} only in the replay" for name in sorted(set(replay) - set(original))]
    for name in sorted(set(original) & set(replay)):
        before, after = original[name], replay[name]
        if not (before == after or abs(before - after) <= tolerance or (math.isnan(before) and math.isnan(after))):
            differences.append(f"metric {name}: {original[name]!r} -> {replay[name]!r}")
    return differences


def compare_environment(original: dict[str, Any], replay: dict[str, Any]) -> list[str]:
    """Code, runtime and package changes since the original run (notes: they did not have to change results)."""
    notes = []
    if original["git"] != replay["git"]:
        notes.append(f"git {original['git']} -> {replay['git']}")
    notes += [f"{name} {version} -> {replay['versions'].get(name)}" for name, version in original["versions"].items()
              if replay["versions"].get(name) != version]
    if original["packages_hash"] != replay["packages_hash"]:
        changed = sorted(set(original["packages"]) ^ set(replay["packages"]))
        notes.append(f"installed packages changed: {', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''}")
    notes += [f"spark conf {key}: {value!r} -> {replay['spark_conf'].get(key)!r}"
              for key, value in original["spark_conf"].items() if replay["spark_conf"].get(key) != value]
    return notes


def prediction_sample(spark: SparkSession, config: LakeforgeConfig, manifest: dict[str, Any], rows: int) -> DataFrame:
    """A fixed sample of the pinned training rows: the `rows` with the smallest hash of the key."""
    pinned = next(t for t in manifest["inputs"] if t["name"] == config.dataset.table)
    features, _ = read_pinned(spark, pinned["name"], pinned["path"], pinned["version"])
    in_train = in_window(features, config.windows.train)
    return train.model_input(in_train, config.model, KEY).orderBy(F.xxhash64(KEY), KEY).limit(rows)


def _gaps(original: pd.Series, replayed: pd.Series) -> np.ndarray:
    """|difference| per row: of numbers, of class probabilities (the largest), or inf where text differs."""
    if pd.api.types.is_numeric_dtype(original):
        return np.abs(original.to_numpy(dtype="float64") - replayed.to_numpy(dtype="float64"))
    return np.array([max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys()), default=0.0)
                     if isinstance(a, dict) else (0.0 if a == b else np.inf)
                     for a, b in zip(original, replayed)])


def compare_predictions(spark: SparkSession, config: LakeforgeConfig, manifest: dict[str, Any],
                        original_run_id: str, replay_run_id: str, tolerance: float, rows: int) -> list[str]:
    """Every output column of both runs' models (scores, classes and probabilities, predictions) on the
    same fixed sample of pinned rows."""
    key = KEY
    sample = prediction_sample(spark, config, manifest, rows).cache()
    try:
        original, replayed = (load_model(f"runs:/{run_id}/model", config.model, config.task.type).predict(sample, key)
                              for run_id in (original_run_id, replay_run_id))
        outputs = [c for c in original.columns if c != key]
        both = original.join(replayed.select(key, *[F.col(c).alias(f"replay_{c}") for c in outputs]), key).toPandas()
    finally:
        sample.unpersist()
    gap = np.max([_gaps(both[c], both[f"replay_{c}"]) for c in outputs], axis=0) if len(both) else np.zeros(0)
    differing = int(np.sum(gap > tolerance))
    if differing:
        return [f"predictions differ on {differing} of {len(both)} sampled rows (max |difference| {gap.max():.3g})"]
    return []


def replay(spark: SparkSession, run_id: str, tolerance: float = 0.0, sample_rows: int = 1000,
           current: LakeforgeConfig | None = None) -> ReplayReport:
    """Re-run run `run_id`'s step from its manifest and compare the new run with it.

    The manifest's secrets are masked: they are taken from `current` (today's config) where it has them.
    Every pinned input is checked first, so a vacuumed version is an error naming the table and version.
    """
    client = mlflow.MlflowClient()
    try:
        original: Run = client.get_run(run_id)
        manifest = load_manifest(run_id)
    except MlflowException as exc:
        raise ReplayError(f"run {run_id} cannot be replayed: no run or no manifest ({exc.message})") from None
    step = manifest["step"]
    if step not in REPLAYABLE_STEPS:
        raise ReplayError(f"run {run_id} is a '{step}' run; replay supports {sorted(REPLAYABLE_STEPS)} "
                          f"(steps that write no table)")
    recorded = manifest["config"] if current is None else restore_masked(manifest["config"],
                                                                         current.model_dump(mode="json"))
    config = parse_config(recorded, source=f"manifest of run {run_id}")
    for table in manifest["inputs"]:
        require_version(spark, table["name"], table["path"], table["version"])
    with replaying(run_id), pinned_versions({t["name"]: t["version"] for t in manifest["inputs"]}):
        REPLAYABLE_STEPS[step](spark, config)
    replay_run = client.get_run(mlflow.last_active_run().info.run_id)
    replay_manifest = load_manifest(replay_run.info.run_id)
    report = ReplayReport(run_id, replay_run.info.run_id, notes=compare_environment(manifest, replay_manifest))
    if replay_manifest["config_hash"] != manifest["config_hash"]:
        report.notes.append(f"config hash {manifest['config_hash']} -> {replay_manifest['config_hash']}: "
                            f"settings added to lakeforge since the run took their defaults")
    report.differences += compare_inputs(manifest, replay_manifest)
    report.differences += compare_metrics(original.data.metrics, replay_run.data.metrics, tolerance)
    report.differences += compare_predictions(spark, config, manifest, run_id, replay_run.info.run_id,
                                              tolerance, sample_rows)
    return report
