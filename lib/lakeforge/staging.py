"""Staged Delta writes: a batch's data files are written now and committed later, or deleted.

Delta's DataFrame writer commits as soon as its files are written. Ingest needs more: measure the
rows while they are written, run the checks, and only then make the batch visible, so a failed
check leaves the table's versions untouched without a second pass over the input. This module
uses the transaction Delta's own writer is built on (``DeltaLog.startTransaction``, then
``writeFiles``, then ``commit``), through py4j.

Until `StagedBatch.commit`, the files are invisible to every reader: they sit in the table's
folder but no log entry names them. `StagedBatch.abort` deletes them; files left by a crashed
process are unreferenced and removed by ``VACUUM``.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from lakeforge.errors import IngestError

BATCH_COLUMN = "_batch_id"


@dataclass
class StagedBatch:
    """Files holding batch `batch_id` of the Delta table at `path`, written but not committed."""

    spark: SparkSession
    path: str
    batch_id: str
    schema: StructType
    rows: int
    _txn: object = field(repr=False)
    _added: list = field(repr=False)
    _replaced: list = field(repr=False)
    _creates_table: bool = field(repr=False)
    _committed: bool = field(default=False, repr=False)

    def frame(self) -> DataFrame:
        """The staged rows, read straight from their Parquet files (for checks before the commit)."""
        files = [_absolute(self.spark, self.path, f.path()).toString() for f in self._added]
        return self.spark.read.schema(self.schema).parquet(*files) if files else self.spark.createDataFrame([], self.schema)

    def commit(self) -> int | None:
        """Make the batch visible, replacing the rows an earlier run wrote under the same batch id.

        Returns the new version, or None when nothing would change (no rows now, none before).
        """
        if not (self._added or self._replaced or self._creates_table):
            return None
        jvm = self.spark._jvm
        actions = jvm.java.util.ArrayList()
        for added in self._added:
            actions.add(added)
        for replaced in self._replaced:
            actions.add(replaced.remove())
        none = jvm.scala.Option.empty()
        operation = jvm.org.apache.spark.sql.delta.DeltaOperations.Write(
            jvm.org.apache.spark.sql.SaveMode.Overwrite, none, jvm.scala.Some(_replace_where(self.batch_id)),
            none, none, none, none, none, none,
        )
        version = self._txn.commit(_scala_list(jvm, actions), operation)
        self._committed = True
        return version

    def abort(self) -> None:
        """Delete the staged files of an uncommitted batch; the table is as if it was never written."""
        if self._committed:
            return
        for added in self._added:
            path = _absolute(self.spark, self.path, added.path())
            path.getFileSystem(self.spark._jsc.hadoopConfiguration()).delete(path, False)
        self._added = []


def stage_batch(df: DataFrame, path: str, batch_id: str, *, known_empty: bool = False) -> StagedBatch:
    """Write `df` as batch `batch_id` of the Delta table at `path` (created if missing), uncommitted.

    The rows get the `_batch_id` and `_ingested_at` columns. Column order may differ from the
    table's; a different set of columns or types is refused, naming them. With `known_empty` the
    caller vouches that `df` has no rows: no Spark job runs, only the old batch's removal is staged.
    """
    spark = df.sparkSession
    jvm = spark._jvm
    rows = df.withColumn(BATCH_COLUMN, F.lit(batch_id)).withColumn("_ingested_at", F.current_timestamp())
    txn = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path).startTransaction()
    creates_table = txn.readVersion() < 0
    if creates_table:
        txn.updateMetadata(_new_table_metadata(jvm, rows.schema), False)
        replaced = []
    else:
        rows = _in_table_order(rows, StructType.fromJson(json.loads(txn.metadata().schemaString())), path)
        replaced = _batch_files(txn, path, batch_id)
    added = [] if known_empty else list(_iterate(txn.writeFiles(rows._jdf)))
    count = sum(_record_count(f, path) for f in added)
    return StagedBatch(spark, path, batch_id, rows.schema, count, txn, added, replaced, creates_table)


def _replace_where(batch_id: str) -> str:
    return f"{BATCH_COLUMN} = '{batch_id}'"


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
