"""Formats that store their types: Parquet files and Delta tables, checked against the declared columns.

A stored type is read as the declared one only if that is lossless (the same type, or a widening such
as int to bigint or double, date to timestamp); anything else is an `IngestError` naming the file or
table, the column and both types. A column with a datetime `format` is parsed from its stored text
(or number, for an epoch) like a text format's, unparsable values quarantined. The null tokens
(`null_values`) are for text formats only: stored values are null or not.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import ColumnSpec
from lakeforge.errors import IngestError
from lakeforge.sources.rows import SourceBatch, file_key, row_id
from lakeforge.sources.text import EPOCH_DIVISORS, parse_text

__all__ = ["SAFE_CASTS", "read_delta", "read_parquet"]

_INTEGERS = ("tinyint", "smallint", "int")
SAFE_CASTS = {  # declared type -> the stored types read as it without loss
    "int": {*_INTEGERS}, "bigint": {*_INTEGERS, "bigint"}, "double": {*_INTEGERS, "float", "double"},
    "string": {"string"}, "boolean": {"boolean"}, "date": {"date"}, "timestamp": {"date", "timestamp"},
}
_NUMBERS = {*_INTEGERS, "bigint", "float", "double"}


def read_parquet(spark: SparkSession, batch: SourceBatch, typed: bool) -> DataFrame:
    """Every file of the batch, each read on its own and checked against the source's columns."""
    def read_file(path: str) -> DataFrame:
        raw = spark.read.options(**batch.source.options).parquet(path)
        position = row_id(batch.batch_id, file_key(path), F.col("_metadata.row_index"))
        return _typed(raw, batch, path, F.lit(path), position)

    return reduce(DataFrame.unionByName, [read_file(path) for path in batch.location.paths])


def read_delta(spark: SparkSession, batch: SourceBatch, typed: bool) -> DataFrame:
    """The Delta table at the version located; a row's position is its data file and index in it
    (``_metadata.row_index`` where the table has it, else its position in the pinned splits)."""
    path = batch.location.paths[0]
    raw = spark.read.options(**batch.source.options).format("delta").option("versionAsOf", batch.location.version).load(path)
    metadata = raw.select("_metadata").schema[0].dataType.fieldNames()
    index = F.col("_metadata.row_index") if "row_index" in metadata else F.monotonically_increasing_id()
    file = F.substring(F.sha1(F.col("_metadata.file_name")), 1, 16)
    return _typed(raw, batch, f"Delta table {path}", F.lit(path), row_id(batch.batch_id, file, index))


def _typed(raw: DataFrame, batch: SourceBatch, where: str, source_file: Column, row: Column) -> DataFrame:
    stored = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
    missing = [c for c in batch.source.columns if c not in stored]
    if missing:
        raise IngestError(f"{where}: missing column(s) {', '.join(missing)} required by source '{batch.name}' "
                          f"(it has: {', '.join(stored) or 'nothing'})")
    values = [_value(F.col(f"`{name}`"), stored[name], spec, where, name) for name, spec in batch.source.columns.items()]
    raw_values = F.struct(*[F.col(f"`{name}`").alias(name) for name in batch.source.columns])
    return raw.select(
        *[value.alias(name) for (value, _), name in zip(values, batch.source.columns)],
        *[failed.alias(f"_unparsable_{i}") for i, (_, failed) in enumerate(values)],
        raw_values.alias("_raw"), F.lit(None).cast("string").alias("_malformed"), F.lit(False).alias("_taints_file"),
        F.lit(False).alias("_replaced"), source_file.alias("_source_file"), row,
    )


def _value(column: Column, stored: str, spec: ColumnSpec, where: str, name: str) -> tuple[Column, Column]:
    """The stored column as the declared type, and whether a value could not be parsed."""
    if stored in SAFE_CASTS[spec.type]:
        return column.cast(spec.type), F.lit(False)
    if spec.format is not None and (stored == "string" or spec.format in EPOCH_DIVISORS and stored in _NUMBERS):
        return parse_text(column, spec, [])
    wanted = f"{spec.type} with format {spec.format}" if spec.format else spec.type
    raise IngestError(f"{where}: column {name} is stored as {stored}, which cannot be read as {wanted} "
                      f"without loss; declare it as {stored} or convert it upstream")
