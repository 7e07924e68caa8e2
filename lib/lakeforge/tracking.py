"""MLflow tracking: experiment set-up and one run per step tagged with what makes it reproducible."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.entities import Run

from lakeforge.config import LakeforgeConfig
from lakeforge.tables import TableVersion

TAG_PREFIX = "lakeforge"


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
    """An MLflow run for `step`, tagged with git commit, config hash and seed; config logged as JSON."""
    configure_mlflow(config)
    git = git_state()
    tags = {
        f"{TAG_PREFIX}.step": step,
        f"{TAG_PREFIX}.git_commit": git["commit"],
        f"{TAG_PREFIX}.git_dirty": git["dirty"],
        f"{TAG_PREFIX}.config_hash": config.fingerprint(),
        f"{TAG_PREFIX}.seed": str(config.seed),
    }
    with mlflow.start_run(run_name=step, tags=tags) as run:
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
        yield run


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
