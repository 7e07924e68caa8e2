"""MLflow tracking: experiment set-up and one run per step tagged with what makes it reproducible."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path

import mlflow
from mlflow.entities import Run
from pyspark.sql import SparkSession

from lakeforge.config import LakeforgeConfig
from lakeforge.reproducibility.manifest import build_manifest, log_manifest, manifest_tags
from lakeforge.runs import RUN_ID_TAG
from lakeforge.tables import TableVersion, recording_reads, table_retention_defaults

TAG_PREFIX = "lakeforge"
REPLAY_OF_TAG = f"{TAG_PREFIX}.replay_of"
_replay_of: ContextVar[str | None] = ContextVar("lakeforge_replay_of", default=None)
_pipeline_run: ContextVar[str | None] = ContextVar("lakeforge_pipeline_run", default=None)


@contextmanager
def pipeline_run(run_id: str) -> Iterator[None]:
    """Step runs started inside the block are tagged with the pipeline's run id (``lakeforge.run_id``)."""
    token = _pipeline_run.set(run_id)
    try:
        yield
    finally:
        _pipeline_run.reset(token)


def replay_of() -> str | None:
    """The run id being replayed while a replay runs, else None (replays leave the model registry alone)."""
    return _replay_of.get()


@contextmanager
def replaying(run_id: str) -> Iterator[None]:
    """Step runs inside the block are replays of `run_id` and are tagged so."""
    token = _replay_of.set(run_id)
    try:
        yield
    finally:
        _replay_of.reset(token)


def configure_mlflow(config: LakeforgeConfig) -> str:
    """Point MLflow at the configured tracking URI and experiment; return the experiment id."""
    mlflow.set_tracking_uri(config.tracking_uri)
    experiment = mlflow.get_experiment_by_name(config.mlflow.experiment)
    if experiment is not None:
        return mlflow.set_experiment(experiment_id=experiment.experiment_id).experiment_id
    artifact_location = None
    if not config.tracking_uri.startswith(("http://", "https://", "databricks")):
        artifact_location = (config.storage_root / "mlartifacts").resolve().as_uri()
    experiment_id = mlflow.create_experiment(config.mlflow.experiment, artifact_location=artifact_location)
    return mlflow.set_experiment(experiment_id=experiment_id).experiment_id


def git_state(start: Path | None = None) -> dict[str, str]:
    """Commit and dirty flag of the checkout holding this code (``unknown`` outside git)."""
    where = str(start or Path(__file__).resolve().parent)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": str(bool(git("status", "--porcelain"))).lower()}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": "unknown"}


@contextmanager
def step_run(config: LakeforgeConfig, step: str) -> Iterator[Run]:
    """An MLflow run for `step`, tagged with git commit, config hash and seed; config logged as JSON.

    Every table version the step reads is recorded and, when the step succeeds, logged with the rest
    of the run manifest (see `lakeforge.reproducibility.manifest`). Tables the step creates get the
    configured retention properties.
    """
    configure_mlflow(config)
    git = git_state()
    tags = {
        f"{TAG_PREFIX}.step": step,
        f"{TAG_PREFIX}.git_commit": git["commit"],
        f"{TAG_PREFIX}.git_dirty": git["dirty"],
        f"{TAG_PREFIX}.config_hash": config.fingerprint(),
        f"{TAG_PREFIX}.seed": str(config.seed),
    }
    if replay_of() is not None:
        tags[REPLAY_OF_TAG] = replay_of()
    if _pipeline_run.get() is not None:
        tags[RUN_ID_TAG] = _pipeline_run.get()
    spark, retention = SparkSession.getActiveSession(), config.retention
    new_tables = (nullcontext() if spark is None else
                  table_retention_defaults(spark, retention.log_retention_days, retention.deleted_file_retention_days))
    with mlflow.start_run(run_name=step, tags=tags) as run, recording_reads() as reads, new_tables:
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
        yield run
        manifest = build_manifest(config, step, reads, git)
        log_manifest(manifest)
        mlflow.set_tags({f"{TAG_PREFIX}.{key}": value for key, value in manifest_tags(manifest).items()})


def log_tables(tables: list[TableVersion], role: str) -> None:
    """Tag the active run with each table's path and version, `role` being ``input`` or ``output``."""
    tags = {}
    for table in tables:
        tags[f"{TAG_PREFIX}.{role}.{table.name}.version"] = str(table.version)
        tags[f"{TAG_PREFIX}.{role}.{table.name}.path"] = table.path
    mlflow.set_tags(tags)


def table_versions_of_run(run: Run, role: str = "input") -> dict[str, int]:
    """Read back the table versions a run logged for `role`, by table name."""
    prefix, suffix = f"{TAG_PREFIX}.{role}.", ".version"
    return {
        key[len(prefix):-len(suffix)]: int(value)
        for key, value in run.data.tags.items()
        if key.startswith(prefix) and key.endswith(suffix)
    }
