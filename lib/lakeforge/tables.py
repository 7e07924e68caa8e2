"""Delta table access that pins what was read: every read names the exact version it used."""
from __future__ import annotations

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from lakeforge.errors import StepError


@dataclass(frozen=True)
class TableVersion:
    """A Delta table as read by a step: its name, path and the version read."""

    name: str
    path: str
    version: int


def latest_version(spark: SparkSession, path: str) -> int:
    """The newest committed version of the Delta table at `path`."""
    if not DeltaTable.isDeltaTable(spark, path):
        raise StepError(f"no Delta table at {path}: run the step that writes it first")
    return DeltaTable.forPath(spark, path).history(1).select("version").head()[0]


def read_pinned(
    spark: SparkSession, name: str, path: str, version: int | None = None
) -> tuple[DataFrame, TableVersion]:
    """Read table `name` at `version` (default: the newest) and say which version that was."""
    if version is None:
        version = latest_version(spark, path)
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    return df, TableVersion(name=name, path=path, version=version)


def last_commit_metrics(spark: SparkSession, path: str) -> dict[str, str]:
    """Operation metrics of the newest commit (e.g. ``numOutputRows``)."""
    row = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").head()
    return dict(row[0] or {})
