"""Batches by content: which landing files are new, unchanged or changed since they were ingested.

Every file an ingest commits is recorded in the ``ingested_files`` Delta table with its SHA-256:
a later ingest reads only the files it has not seen, so re-ingesting the same content is a no-op and
a file added beside old ones never brings the old rows again. A file whose content changed under a
name already ingested is refused, unless the user asks to replace the batch that holds it
(``--replace-batch``): then that whole batch is read again from its files as they are now. A Delta
source is a snapshot: a new version of it replaces the batch of the version ingested before.

The batch id is the source name and a hash of the batch's file names and checksums (or the Delta
table and version), so the same content always maps to the same batch id and row ids.
"""
from __future__ import annotations

import hashlib
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.errors import IngestError
from lakeforge.sources import Location
from lakeforge.storage import Storage

__all__ = ["FILES_TABLE", "FILES_SCHEMA", "SourcePlan", "content_batch_id", "file_checksums", "ingested_files",
           "location_contents", "plan_batch"]

FILES_TABLE = "ingested_files"
FILES_SCHEMA = "source string, file string, sha256 string, bytes long, batch_id string"  # + _batch_id: the ingest
_CHUNK = 8 << 20
_SHOWN = 5


@dataclass(frozen=True)
class IngestedFile:
    """The newest record of a file in ``ingested_files``."""

    sha256: str
    batch_id: str


@dataclass(frozen=True)
class SourcePlan:
    """What one source's ingest reads: `location` (only the files to read), its batch id, the batches it
    replaces, the ``ingested_files`` rows it adds, and how many files it skipped as already ingested."""

    source: str
    location: Location
    batch_id: str
    replaces: tuple[str, ...]
    entries: tuple[tuple[str, str, int], ...]  # (file, sha256, bytes)
    skipped: int


def file_checksums(storage: Storage, paths: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """SHA-256 and size of each file, read in 8 MiB chunks, two files at a time (hashing releases the GIL)."""
    def checksum(path: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        with storage.open_input(path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="checksum") as pool:
        return dict(zip(paths, pool.map(checksum, paths)))


def location_contents(storage: Storage, location: Location) -> dict[str, tuple[str, int]]:
    """What `location` holds: file -> (SHA-256, bytes), or for a Delta table, table -> ("version N", 0)."""
    if location.version is not None:
        return {location.paths[0]: (f"version {location.version}", 0)}
    return file_checksums(storage, location.paths)


def content_batch_id(source: str, contents: dict[str, tuple[str, int]]) -> str:
    """``<source>-<12 hex digits>`` from the files' names and checksums (`location_contents`)."""
    text = "".join(f"{posixpath.basename(path.rstrip('/'))}:{digest};" for path, (digest, _) in sorted(contents.items()))
    return f"{source}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def ingested_files(spark: SparkSession, path: str, version: int | None) -> dict[tuple[str, str], IngestedFile]:
    """(source, file) -> its newest record in version `version` of the ``ingested_files`` table at `path`
    (None: no table yet)."""
    if version is None:
        return {}
    rows: DataFrame = spark.read.format("delta").option("versionAsOf", version).load(path)
    newest = rows.groupBy("source", "file").agg(F.max_by(F.struct("sha256", "batch_id"), "_ingested_at").alias("n"))
    return {(r["source"], r["file"]): IngestedFile(r["n"]["sha256"], r["n"]["batch_id"]) for r in newest.collect()}


def plan_batch(source: str, location: Location, storage: Storage, seen: dict[tuple[str, str], IngestedFile],
               replace_batch: bool, batch_id: str | None = None) -> SourcePlan | None:
    """The batch to ingest from `location` given what `seen` holds, or None when nothing is new.

    Raises naming the files when some changed since they were ingested and `replace_batch` is not set.
    """
    measured = location_contents(storage, location)
    contents = {path: digest for path, (digest, _) in measured.items()}
    known = {path: seen[(source, path)] for path in contents if (source, path) in seen}
    changed = sorted(path for path, record in known.items() if record.sha256 != contents[path])
    replaces = tuple(sorted({known[path].batch_id for path in changed}))
    if changed and not (replace_batch or location.version is not None):
        shown = ", ".join(f"{path} (batch {known[path].batch_id})" for path in changed[:_SHOWN])
        more = f" and {len(changed) - _SHOWN} more" if len(changed) > _SHOWN else ""
        raise IngestError(
            f"source '{source}': {len(changed)} file(s) changed since they were ingested: {shown}{more}. "
            f"Land changed data under a new file name, or run ingest with --replace-batch to replace "
            f"batch(es) {', '.join(replaces)} with the files as they are now")
    to_read = [path for path in contents
               if path not in known or path in changed or known[path].batch_id in replaces]
    if not to_read:
        return None
    return SourcePlan(source, replace(location, paths=tuple(sorted(to_read))),
                      batch_id or content_batch_id(source, {path: measured[path] for path in to_read}), replaces,
                      tuple((path, *measured[path]) for path in sorted(to_read)),
                      len(contents) - len(to_read))
