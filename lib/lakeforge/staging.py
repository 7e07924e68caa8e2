"""Staged Delta writes: a batch's data files are written now and committed later, or deleted.

Delta's DataFrame writer commits as soon as its files are written. Ingest needs more: measure the
rows while they are written, run the checks, and only then make the batch visible, so a failed
check leaves the table's versions untouched without a second pass over the input. This module
uses the transaction Delta's own writer is built on (``DeltaLog.startTransaction``, then
``writeFiles``, then ``commit``), through py4j.

Until `StagedBatch.commit`, the files are invisible to every reader: they sit in the table's
folder but no log entry names them. `StagedBatch.abort` deletes them; files left by a crashed
process are unreferenced and removed by ``VACUUM``.

A commit can carry an application id (Delta's ``SetTransaction``): `StagedBatch.record` gives the
batch's actions as JSON, and `commit_record` commits them in a new transaction unless the table
already holds that id, so a commit interrupted by a crash can be completed later, exactly once.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from lakeforge.errors import IngestError
from lakeforge.tables import delta_log

BATCH_COLUMN = "_batch_id"


@dataclass
class StagedBatch:
    """Files holding batch `batch_id` of the Delta table at `path`, written but not committed; the commit
    also removes the rows of `replaces` (earlier batches this one supersedes) and of `batch_id` itself."""

    spark: SparkSession
    path: str
    batch_id: str
    schema: StructType
    rows: int
    replaces: tuple[str, ...]
    _txn: object = field(repr=False)
    _added: list = field(repr=False)
    _replaced: list = field(repr=False)
    _creates_table: bool = field(repr=False)
    _committed: bool = field(default=False, repr=False)

    def frame(self) -> DataFrame:
        """The staged rows, read straight from their Parquet files (for checks before the commit)."""
        files = [_absolute(self.spark, self.path, f.path()).toString() for f in self._added]
        return self.spark.read.schema(self.schema).parquet(*files) if files else self.spark.createDataFrame([], self.schema)

    @property
    def read_version(self) -> int:
        """The table version the staging transaction read (-1: the table did not exist)."""
        return self._txn.readVersion()

    @property
    def changes(self) -> bool:
        """False when committing would change nothing (no rows now, none replaced, the table exists)."""
        return bool(self._added or self._replaced or self._creates_table)

    def commit(self, app_id: str | None = None) -> int | None:
        """Make the batch visible in the transaction that staged it: any commit to the table since then
        makes this one fail (Delta's ConcurrentAppendException). Returns the new version, or None when
        nothing would change. `app_id` is recorded in the table (see `commit_record`)."""
        if not self.changes:
            return None
        version = _commit(self.spark, self._txn, self._added + [r.remove() for r in self._replaced],
                          (self.batch_id, *self.replaces), app_id)
        self._committed = True
        return version

    def record(self) -> dict[str, Any]:
        """The batch's commit as JSON-able data, for `commit_record`."""
        return {"path": self.path, "batch_ids": [self.batch_id, *self.replaces],
                "schema": self.schema.json() if self._creates_table else None,
                "actions": [a.json() for a in self._added] + [r.remove().json() for r in self._replaced]}

    def abort(self) -> None:
        """Delete the staged files of an uncommitted batch; the table is as if it was never written."""
        if self._committed:
            return
        delete_staged_files(self.spark, self.record())
        self._added = []


def commit_record(spark: SparkSession, record: dict[str, Any], app_id: str) -> int | None:
    """Commit a `StagedBatch.record` in a new transaction, unless the table already holds `app_id`:
    the new version, or None when it was committed before (or there is nothing to commit)."""
    jvm = spark._jvm
    txn = delta_log(spark, record["path"]).startTransaction()
    if txn.txnVersion(app_id) >= 0 or not (record["actions"] or record["schema"]):
        return None
    if txn.readVersion() < 0:
        txn.updateMetadata(_new_table_metadata(jvm, StructType.fromJson(json.loads(record["schema"]))), False)
    action = _action_object(jvm)
    return _commit(spark, txn, [action.fromJson(text) for text in record["actions"]], tuple(record["batch_ids"]), app_id)


def delete_staged_files(spark: SparkSession, record: dict[str, Any]) -> None:
    """Delete the files a record adds (never committed: the caller knows its commit did not happen)."""
    action = _action_object(spark._jvm)
    for text in record["actions"]:
        added = action.fromJson(text)
        if added.getClass().getSimpleName() == "AddFile":
            path = _absolute(spark, record["path"], added.path())
            path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(path, False)


def _action_object(jvm):
    """Delta's ``Action`` companion object (its ``fromJson``)."""
    return getattr(getattr(jvm.org.apache.spark.sql.delta.actions, "Action$"), "MODULE$")


def _commit(spark: SparkSession, txn, actions: list, batch_ids: tuple[str, ...], app_id: str | None) -> int:
    jvm = spark._jvm
    delta = jvm.org.apache.spark.sql.delta
    if app_id is not None:
        now = jvm.scala.Some(jvm.java.lang.Long(int(time.time() * 1000)))
        actions = [*actions, delta.actions.SetTransaction(app_id, 0, now)]
    none = jvm.scala.Option.empty()
    operation = delta.DeltaOperations.Write(
        jvm.org.apache.spark.sql.SaveMode.Overwrite, none, jvm.scala.Some(_replace_where(batch_ids)),
        none, none, none, none, none, none,
    )
    java_actions = jvm.java.util.ArrayList()
    for item in actions:
        java_actions.add(item)
    return txn.commit(_scala_list(jvm, java_actions), operation)


def stage_batch(df: DataFrame, path: str, batch_id: str, *, replaces: tuple[str, ...] = (),
                known_empty: bool = False) -> StagedBatch:
    """Write `df` as batch `batch_id` of the Delta table at `path` (created if missing), uncommitted;
    its commit replaces the rows of `batch_id` and of the batches in `replaces`.

    The rows get the `_batch_id` and `_ingested_at` columns. Column order may differ from the
    table's; a different set of columns or types is refused, naming them. With `known_empty` the
    caller vouches that `df` has no rows: no Spark job runs, only the old batches' removal is staged.
    """
    spark = df.sparkSession
    jvm = spark._jvm
    rows = df.withColumn(BATCH_COLUMN, F.lit(batch_id)).withColumn("_ingested_at", F.current_timestamp())
    txn = delta_log(spark, path).startTransaction()
    creates_table = txn.readVersion() < 0
    if creates_table:
        txn.updateMetadata(_new_table_metadata(jvm, rows.schema), False)
        replaced = []
    else:
        rows = _in_table_order(rows, StructType.fromJson(json.loads(txn.metadata().schemaString())), path)
        replaced = [f for batch in (batch_id, *replaces) for f in _batch_files(txn, path, batch)]
    added = [] if known_empty else list(_iterate(txn.writeFiles(rows._jdf)))
    count = sum(_record_count(f, path) for f in added)
    return StagedBatch(spark, path, batch_id, rows.schema, count, tuple(replaces), txn, added, replaced, creates_table)


def _replace_where(batch_ids: tuple[str, ...]) -> str:
    return f"{BATCH_COLUMN} IN ({', '.join(repr(b) for b in batch_ids)})"


def _in_table_order(rows: DataFrame, table_schema: StructType, path: str) -> DataFrame:
    ours = {f.name: _type(f.dataType) for f in rows.schema.fields}
    theirs = {f.name: _type(f.dataType) for f in table_schema.fields}
    if ours != theirs:
        differ = sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))
        raise IngestError(
            f"{path}: the batch's columns do not match the table's: "
            + ", ".join(f"{n} ({ours.get(n, 'missing')} here, {theirs.get(n, 'missing')} in the table)" for n in differ)
        )
    return rows.select(*table_schema.names)


def _type(data_type) -> str:
    """The type without nullability, which Delta does not hold a batch to (its tables are all nullable)."""
    return data_type.simpleString()


def _nullable(schema_json):
    """The schema with every field, array element and map value nullable, as Delta's own writer creates tables."""
    if isinstance(schema_json, dict):
        return {key: True if key in ("nullable", "containsNull", "valueContainsNull") else _nullable(value)
                for key, value in schema_json.items()}
    return [_nullable(item) for item in schema_json] if isinstance(schema_json, list) else schema_json


def _batch_files(txn, path: str, batch_id: str) -> list:
    """The committed files holding `batch_id`; their statistics must show they hold nothing else.

    The transaction records a read of the whole table, so any concurrent commit to it makes ours fail.
    """
    txn.readWholeTable()
    if txn.snapshot().numOfFiles() == 0:  # read from the version's checksum file: no Spark job
        return []
    low, high = (F.get_json_object("stats", f"$.{side}.{BATCH_COLUMN}") for side in ("minValues", "maxValues"))
    may_hold = low.isNull() | high.isNull() | ((low <= batch_id) & (high >= batch_id))
    candidates = list(txn.snapshot().allFiles().filter(may_hold._jc).collectAsList())
    mixed = []
    for candidate in candidates:
        stats = json.loads(candidate.stats() or "{}")
        if not stats.get("minValues", {}).get(BATCH_COLUMN) == stats.get("maxValues", {}).get(BATCH_COLUMN) == batch_id:
            mixed.append(candidate.path())
    if mixed:
        raise IngestError(f"{path}: file(s) {', '.join(sorted(mixed))} may hold batch {batch_id} besides other rows; "
                          "replacing the batch would need rewriting them")
    return candidates


def _record_count(added, path: str) -> int:
    count = added.numLogicalRecords()
    if count.isEmpty():
        raise IngestError(f"{path}: staged file {added.path()} has no row count (are Delta statistics disabled?)")
    return int(count.get())


def _new_table_metadata(jvm, schema: StructType):
    empty = getattr(getattr(jvm.scala.collection.immutable, "Map$"), "MODULE$").empty()
    actions = jvm.org.apache.spark.sql.delta.actions
    return actions.Metadata(
        str(uuid.uuid4()), None, None, actions.Format("parquet", empty), json.dumps(_nullable(schema.jsonValue())),
        _scala_list(jvm, jvm.java.util.ArrayList()), empty, jvm.scala.Some(jvm.java.lang.Long(int(time.time() * 1000))),
    )


def _absolute(spark: SparkSession, table_path: str, file_path: str):
    return spark._jvm.org.apache.spark.sql.delta.util.DeltaFileOperations.absolutePath(table_path, file_path)


def _scala_list(jvm, items):
    return jvm.scala.jdk.javaapi.CollectionConverters.asScala(items).toList()


def _iterate(scala_seq):
    iterator = scala_seq.iterator()
    while iterator.hasNext():
        yield iterator.next()
