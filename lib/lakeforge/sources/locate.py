"""Where a source's rows are: the files its path glob matches, or the Delta table (and version) it names."""
from __future__ import annotations

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakeforge.config import SourceSettings
from lakeforge.errors import IngestError
from lakeforge.tables import latest_version

__all__ = ["Location", "locate"]


@dataclass(frozen=True)
class Location:
    """The files to read (sorted), or the one Delta table at `version`."""

    paths: tuple[str, ...]
    version: int | None = None


def locate(spark: SparkSession, name: str, source: SourceSettings, path: str) -> Location:
    """The files matching `path` (a glob, a local path or a URI, listed by Hadoop's FileSystem), or its Delta table."""
    if source.format == "delta":
        if not DeltaTable.isDeltaTable(spark, path):
            raise IngestError(f"source '{name}': {path} is not a Delta table")
        version = latest_version(spark, path)
        return Location((path,), version)
    pattern = spark._jvm.org.apache.hadoop.fs.Path(path)
    statuses = pattern.getFileSystem(spark._jsc.hadoopConfiguration()).globStatus(pattern) or []
    files = sorted(_shown(s.getPath()) for s in statuses if s.isFile())
    if not files:
        raise IngestError(f"source '{name}': no files match {path}")
    return Location(tuple(files))


def _shown(hadoop_path) -> str:
    """A local file as a plain path (as it was configured), anything else as its URI."""
    uri = hadoop_path.toUri()
    return uri.getPath() if uri.getScheme() == "file" else hadoop_path.toString()
