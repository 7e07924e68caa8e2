"""``lakeforge vacuum``: Delta VACUUM that keeps every table version a registered model was trained on.

VACUUM cannot keep chosen old versions: it deletes every file removed from the table longer ago than
the retention. Files a version needs can only have been removed after that version was committed, so
a retention reaching back past the commit of the oldest protected version keeps them all. A vacuum
with a shorter retention is refused unless forced.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

import mlflow
from delta.tables import DeltaTable
from mlflow.exceptions import MlflowException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig
from lakeforge.errors import LakeforgeError
from lakeforge.reproducibility.manifest import load_manifest
from lakeforge.storage import join, storage_for
from lakeforge.tracking import TAG_PREFIX, table_versions_of_run

SAFETY_MARGIN_HOURS = 1.0  # the vacuum's own duration moves its cut-off forward


class RetentionError(LakeforgeError):
    """A vacuum would delete files that a registered model's training data needs."""


@dataclass(frozen=True)
class ProtectedVersion:
    """A table version read by the run behind a registered model version."""

    path: str
    table: str
    version: int
    model: str


@dataclass
class VacuumPlan:
    """One table's vacuum: the protected versions and the retention (hours) that keeps them readable."""

    table: str
    path: str
    retention_hours: float
    protected: list[ProtectedVersion]
    required_hours: float | None

    @property
    def safe(self) -> bool:
        return self.required_hours is None or self.retention_hours >= self.required_hours

    def describe(self) -> str:
        versions = ", ".join(f"v{p.version} ({p.model})" for p in self.protected) or "none"
        need = "" if self.required_hours is None else f"; keeping them needs retention >= {self.required_hours:g}h"
        return f"{self.table}: protected versions {versions}{need}; retention {self.retention_hours:g}h"


def run_inputs(run_id: str) -> list[dict]:
    """Tables a run read (name, path, version): from its manifest, else from its input tags (older runs)."""
    try:
        return load_manifest(run_id)["inputs"]
    except MlflowException:
        run = mlflow.get_run(run_id)
        return [{"name": name, "path": run.data.tags[f"{TAG_PREFIX}.input.{name}.path"], "version": version}
                for name, version in table_versions_of_run(run).items()]


def protected_versions() -> dict[str, list[ProtectedVersion]]:
    """Table versions read by the run behind each registered model version, by table path."""
    protected: dict[str, set[ProtectedVersion]] = defaultdict(set)
    for model_version in mlflow.search_model_versions():
        if not model_version.run_id:
            continue
        for table in run_inputs(model_version.run_id):
            path = join(table["path"])
            protected[path].add(ProtectedVersion(path, table["name"], int(table["version"]),
                                                 f"{model_version.name} v{model_version.version}"))
    return {path: sorted(versions, key=lambda p: (p.version, p.model)) for path, versions in protected.items()}


def required_retention_hours(spark: SparkSession, path: str, versions: list[int]) -> float | None:
    """Hours of retention that keep the files of every version in `versions` (None: all are current)."""
    history = DeltaTable.forPath(spark, path).history().select("version", F.col("timestamp").cast("long").alias("at"))
    committed_at = {row["version"]: row["at"] for row in history.collect()}
    older = [v for v in versions if v < max(committed_at)]
    if not older:
        return None
    oldest = min(older)
    if oldest not in committed_at:
        raise RetentionError(f"{path}: protected version {oldest} is no longer in the table's history")
    age_hours = (time.time() - committed_at[oldest]) / 3600
    return math.ceil(age_hours + SAFETY_MARGIN_HOURS)


def lakeforge_tables(config: LakeforgeConfig) -> dict[str, str]:
    """Every Delta table under the storage root, name -> path."""
    storage, root = storage_for(config), config.location("delta")
    return {name: config.table_path(name) for name, is_dir in sorted(storage.children(root).items())
            if is_dir and storage.exists(join(config.table_path(name), "_delta_log"))}


def plan_vacuum(spark: SparkSession, config: LakeforgeConfig, tables: list[str] | None = None,
                retention_hours: float | None = None) -> list[VacuumPlan]:
    """What vacuuming `tables` (default: all) with `retention_hours` (default: the config's) would protect."""
    available = lakeforge_tables(config)
    unknown = sorted(set(tables or []) - set(available))
    if unknown:
        raise RetentionError(f"no Delta table {unknown} under {config.location('delta')}")
    hours = config.retention.deleted_file_retention_days * 24 if retention_hours is None else retention_hours
    protected = protected_versions()
    plans = []
    for name in tables or list(available):
        path = available[name]
        versions = protected.get(path, [])
        required = required_retention_hours(spark, path, [p.version for p in versions]) if versions else None
        plans.append(VacuumPlan(name, path, hours, versions, required))
    return plans


def vacuum(spark: SparkSession, config: LakeforgeConfig, tables: list[str] | None = None,
           retention_hours: float | None = None, force: bool = False) -> list[VacuumPlan]:
    """VACUUM `tables`; refuse (nothing vacuumed) if any would lose a protected version, unless `force`."""
    plans = plan_vacuum(spark, config, tables, retention_hours)
    unsafe = [plan for plan in plans if not plan.safe]
    if unsafe and not force:
        raise RetentionError("vacuum refused, it would delete files of versions registered models were trained on "
                             "(use a longer retention, or --force):\n" + "\n".join(f"  {p.describe()}" for p in unsafe))
    for plan in plans:
        DeltaTable.forPath(spark, plan.path).vacuum(plan.retention_hours)
    return plans
