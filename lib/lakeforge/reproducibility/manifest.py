"""The run manifest: everything needed to re-run a step to the same result, logged with every MLflow run.

It lists each Delta table the step read with the version read, the resolved config and its hash, the
git state, the seed, runtime versions, a lock of installed packages and the Spark conf that affects results.
Secrets are masked (`lakeforge.masking`); the hash is of the config as it ran, so masking does not change it.
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
from dataclasses import asdict
from importlib import metadata
from typing import Any

import mlflow
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from pyspark.sql import SparkSession

from lakeforge.config import LakeforgeConfig
from lakeforge.masking import mask_secrets
from lakeforge.tables import TableVersion

MANIFEST_ARTIFACT = "manifest.json"
RESULT_AFFECTING_CONF = ("spark.sql.", "spark.databricks.delta.", "spark.master", "spark.jars.packages")
RUNTIME_PACKAGES = {"pyspark": "pyspark", "delta-spark": "delta_spark_python", "mlflow": "mlflow",
                    "scikit-learn": "sklearn", "pandas": "pandas", "numpy": "numpy", "pyarrow": "pyarrow"}


class PinnedDeltaSource(DeltaDatasetSource):
    """MLflow's Delta dataset source, but recording version 0 too (MLflow drops falsy versions)."""

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "delta_table_version": self.delta_table_version}


def installed_packages() -> list[str]:
    """``name==version`` of every installed distribution, sorted: a ``pip freeze``-style lock.

    Reading every distribution's metadata takes about 0.4 s, so the lock is kept until an install or
    removal changes a folder on ``sys.path`` (its modification time) or ``sys.path`` itself."""
    return list(_packages_on(tuple((entry, _modified(entry)) for entry in sys.path)))


def _modified(entry: str) -> int | None:
    try:
        return os.stat(entry or ".").st_mtime_ns
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _packages_on(path_stamps: tuple[tuple[str, int | None], ...]) -> tuple[str, ...]:
    found = {dist.metadata["Name"].lower(): dist.version for dist in metadata.distributions() if dist.metadata["Name"]}
    return tuple(f"{name}=={version}" for name, version in sorted(found.items()))


def runtime_versions(spark: SparkSession | None) -> dict[str, str]:
    """Python, Spark (JVM), Delta (jars) and the Python libraries that compute results."""
    versions = {"python": platform.python_version()}
    for distribution, key in RUNTIME_PACKAGES.items():
        try:
            versions[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[key] = "not installed"
    if spark is not None:
        versions["spark"] = spark.version
        versions["delta"] = spark.sparkContext._jvm.io.delta.package.VERSION()
    return versions


def result_affecting_conf(spark: SparkSession | None) -> dict[str, str]:
    """Spark SQL and Delta settings (time zone, ANSI mode, shuffle partitions, ...) plus master and jars."""
    if spark is None:
        return {}
    return {key: value for key, value in sorted(spark.conf.getAll.items()) if key.startswith(RESULT_AFFECTING_CONF)}


def build_manifest(config: LakeforgeConfig, step: str, inputs: list[TableVersion], git: dict[str, str]) -> dict[str, Any]:
    """The manifest of a run of `step` that read `inputs` (in read order)."""
    spark = SparkSession.getActiveSession()
    packages = installed_packages()
    return {
        "step": step,
        "inputs": [asdict(table) for table in inputs],
        "config": mask_secrets(config.model_dump(mode="json")),
        "config_hash": config.fingerprint(),
        "git": git,
        "seeds": {"seed": config.seed},
        "versions": runtime_versions(spark),
        "packages": packages,
        "packages_hash": hashlib.sha256("\n".join(packages).encode()).hexdigest()[:16],
        "spark_conf": mask_secrets(result_affecting_conf(spark)),
    }


def manifest_tags(manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's summary as run tags (without the ``lakeforge.`` prefix)."""
    tags = {f"version.{name}": version for name, version in manifest["versions"].items()}
    tags["packages_hash"] = manifest["packages_hash"]
    tags["inputs"] = ",".join(f"{t['name']}@v{t['version']}" for t in manifest["inputs"])
    return tags


def log_manifest(manifest: dict[str, Any]) -> None:
    """Log `manifest` to the active run as a JSON artifact and each input via `mlflow.log_input`."""
    mlflow.log_dict(manifest, MANIFEST_ARTIFACT)
    for table in manifest["inputs"]:
        source = PinnedDeltaSource(path=table["path"], delta_table_version=table["version"])
        dataset = MetaDataset(source, name=f"{table['name']}@v{table['version']}")
        mlflow.log_input(dataset, context=manifest["step"])


def load_manifest(run_id: str) -> dict[str, Any]:
    """The manifest logged with run `run_id` (raises MlflowException if the run has none)."""
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{MANIFEST_ARTIFACT}")
