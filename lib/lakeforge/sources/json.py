"""JSON lines landing files: read with every column as text (a number arrives as its JSON text), typed here."""
from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.sources.rows import SourceBatch, file_key, replaced, row_id
from lakeforge.sources.text import CORRUPT, text_columns

__all__ = ["read_json"]


def read_json(spark: SparkSession, batch: SourceBatch, typed: bool) -> DataFrame:
    """Every file of the batch, each read on its own; a line that is not a JSON object is malformed.

    `typed` makes no difference: every row's text is at hand.
    """
    return reduce(DataFrame.unionByName, [_read_file(spark, batch, path) for path in batch.location.paths])


def _read_file(spark: SparkSession, batch: SourceBatch, path: str) -> DataFrame:
    columns = [*batch.source.columns, CORRUPT]
    schema = ", ".join(f"`{name.replace('`', '``')}` string" for name in columns)
    reader = spark.read.options(**batch.source.options).schema(schema).option("mode", "PERMISSIVE") \
        .option("columnNameOfCorruptRecord", CORRUPT)
    raw = reader.json(path).select(*columns, replaced(columns), F.lit(path).alias("_source_file"),
                                   row_id(batch.batch_id, file_key(path), F.monotonically_increasing_id()))
    text = F.struct(*[F.col(c) for c in columns])
    malformed = F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed row: not a JSON object"))
    return raw.select(*text_columns(text, batch.source), malformed.alias("_malformed"),
                      F.lit(False).alias("_taints_file"), "_replaced", "_source_file", "_row_id")
