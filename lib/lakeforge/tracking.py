"""MLflow tracking: experiment set-up, one parent run per pipeline run and one nested run per step,
tagged with the lakeforge run id and what makes it reproducible.

Each step run is tagged with the host and process running it. A step killed without cleanup leaves its
run RUNNING; when the step runs again, or its pipeline run is resumed, that run is marked FAILED
(`fail_abandoned_runs`).
"""
from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path

import mlflow
from mlflow.entities import Run
from pyspark.sql import SparkSession

from lakeforge.config import LakeforgeConfig
from lakeforge.masking import mask_secrets
from lakeforge.mlflow_store import connect, reachable
from lakeforge.storage import local_path
from lakeforge.reproducibility.manifest import build_manifest, log_manifest, manifest_tags
from lakeforge.runs import RUN_ID_TAG
from lakeforge.tables import TableVersion, recording_reads, table_retention_defaults

TAG_PREFIX = "lakeforge"
REPLAY_OF_TAG = f"{TAG_PREFIX}.replay_of"
ROLE_TAG = f"{TAG_PREFIX}.role"
STEP_TAG = f"{TAG_PREFIX}.step"
HOST_TAG = f"{TAG_PREFIX}.host"
PID_TAG = f"{TAG_PREFIX}.pid"
PARENT_RUN_ENV = "LAKEFORGE_PARENT_RUN_ID"
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_replay_of: ContextVar[str | None] = ContextVar("lakeforge_replay_of", default=None)
# (MLflow parent run id, lakeforge run id) of the pipeline run in progress
_pipeline: ContextVar[tuple[str, str] | None] = ContextVar("lakeforge_pipeline_run", default=None)


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


def point_mlflow(config: LakeforgeConfig) -> None:
    """Point MLflow at the configured tracking and registry URIs (see `LakeforgeConfig.tracking_uri`),
    without their credentials (see `lakeforge.mlflow_store.connect`).

    MLflow also writes them to MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI; those are put back as they
    were, so that the environment keeps meaning what the user set and the next config is not pointed
    at this one's store.
    """
    tracking, registry = connect(config)
    before = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def configure_mlflow(config: LakeforgeConfig) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id.

    A new experiment stores its artifacts under ``<storage_root>/mlartifacts`` unless the tracking
    URI is a server (which has its own artifact store); ``s3a://`` becomes MLflow's ``s3://``.
    """
    point_mlflow(config)
    with _first_use_lock(config.tracking_uri):  # two processes starting on a new store create it once
        with reachable(config):
            experiment = mlflow.get_experiment_by_name(config.mlflow.experiment)
        if experiment is not None:
            return mlflow.set_experiment(experiment_id=experiment.experiment_id).experiment_id
        artifact_location = None
        if not config.tracking_uri.startswith(("http://", "https://", "databricks")):
            local = local_path(config.storage_root)
            artifact_location = (Path(local, "mlartifacts").as_uri() if local is not None else
                                 re.sub(r"^s3[an]://", "s3://", config.location("mlartifacts")))
        experiment_id = mlflow.create_experiment(config.mlflow.experiment, artifact_location=artifact_location)
        return mlflow.set_experiment(experiment_id=experiment_id).experiment_id


@contextmanager
def _first_use_lock(tracking_uri: str) -> Iterator[None]:
    """An exclusive lock beside a sqlite store while it is opened (its tables created) and the experiment made;
    other stores (a server) serialize this themselves."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def pipeline_run(config: LakeforgeConfig, run_id: str) -> Iterator[str]:
    """The parent MLflow run of lakeforge run `run_id`; step runs started inside the block nest under it.

    Resuming `run_id` reuses its parent run. Inside a spark-submit job started by ``--submit``, the
    parent is the one the submitting process passed in `PARENT_RUN_ENV`.
    """
    inherited = os.environ.get(PARENT_RUN_ENV)
    if inherited:
        token = _pipeline.set((inherited, run_id))
        try:
            yield inherited
        finally:
            _pipeline.reset(token)
        return
    experiment_id = configure_mlflow(config)
    client = mlflow.MlflowClient()
    tags = {RUN_ID_TAG: run_id, ROLE_TAG: "pipeline"}
    found = client.search_runs([experiment_id], " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items()))
    parent = found[0].info.run_id if found else client.create_run(experiment_id, run_name=f"pipeline {run_id}",
                                                                  tags=tags).info.run_id
    fail_abandoned_runs(client, experiment_id, f"tags.`{RUN_ID_TAG}` = '{run_id}'")
    token, status = _pipeline.set((parent, run_id)), "FAILED"
    try:
        client.update_run(parent, status="RUNNING")
        yield parent
        status = "FINISHED"
    finally:
        _pipeline.reset(token)
        client.set_terminated(parent, status)


def parent_run_id() -> str | None:
    """The MLflow run id of the pipeline run in progress, if any."""
    pipeline = _pipeline.get()
    return pipeline[0] if pipeline else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def fail_abandoned_runs(client: mlflow.MlflowClient, experiment_id: str, where: str, step: str | None = None) -> list[str]:
    """Mark FAILED the RUNNING step runs matching the search filter `where` whose process is gone: started on
    this host by a process that no longer exists, or (`step`) earlier runs of the step about to run again in
    the same pipeline run. Returns their run ids."""
    pipeline = _pipeline.get()
    abandoned = []
    for run in client.search_runs([experiment_id], f"{where} and attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if PID_TAG not in tags:  # not a step run
            continue
        dead = tags.get(HOST_TAG) == socket.gethostname() and not _process_alive(int(tags[PID_TAG]))
        rerun = (step is not None and tags.get(STEP_TAG) == step and pipeline is not None
                 and tags.get(RUN_ID_TAG) == pipeline[1])
        if dead or rerun:
            client.set_tag(run.info.run_id, f"{TAG_PREFIX}.abandoned", "the process running this step was killed "
                           "or lost; marked FAILED when the step ran again")
            client.set_terminated(run.info.run_id, "FAILED")
            abandoned.append(run.info.run_id)
    return abandoned


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

    Inside `pipeline_run` it is nested under the pipeline's parent run and tagged with the lakeforge run id.

    Every table version the step reads is recorded and, when the step succeeds, logged with the rest
    of the run manifest (see `lakeforge.reproducibility.manifest`). Tables the step creates get the
    configured retention properties.
    """
    experiment_id = configure_mlflow(config)
    git = git_state()
    tags = {
        STEP_TAG: step,
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        f"{TAG_PREFIX}.git_commit": git["commit"],
        f"{TAG_PREFIX}.git_dirty": git["dirty"],
        f"{TAG_PREFIX}.config_hash": config.fingerprint(),
        f"{TAG_PREFIX}.seed": str(config.seed),
    }
    if replay_of() is not None:
        tags[REPLAY_OF_TAG] = replay_of()
    pipeline, parent = _pipeline.get(), None
    if pipeline is not None:
        tags[RUN_ID_TAG] = pipeline[1]
        parent = None if mlflow.active_run() else pipeline[0]  # MLflow refuses a parent other than the active run
    spark, retention = SparkSession.getActiveSession(), config.retention
    new_tables = (nullcontext() if spark is None else
                  table_retention_defaults(spark, retention.log_retention_days, retention.deleted_file_retention_days))
    fail_abandoned_runs(mlflow.MlflowClient(), experiment_id, f"tags.`{STEP_TAG}` = '{step}'", step)
    with (mlflow.start_run(run_name=step, tags=tags, parent_run_id=parent) as run, recording_reads() as reads,
          new_tables):
        mlflow.log_dict(mask_secrets(config.model_dump(mode="json")), "config.json")
        yield run
        manifest = build_manifest(config, step, reads, git)
        log_manifest(manifest)
        mlflow.set_tags({f"{TAG_PREFIX}.{key}": value for key, value in manifest_tags(manifest).items()})


def log_bytes(data: bytes, artifact_path: str, name: str) -> None:
    """Log `data` as the artifact ``<artifact_path>/<name>`` of the active run."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / name).write_bytes(data)
        mlflow.log_artifact(str(Path(folder) / name), artifact_path)


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
