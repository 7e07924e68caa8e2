"""Reading landing sources: each format's rows typed to the source's columns and flagged for quarantine.

`locate` finds a source's files (or Delta table); `read` returns their rows in the shape described
in `lakeforge.sources.rows`, with `_bad` set on the rows to quarantine; `undecodable_files` finds the
files whose rows are all to be quarantined, as they are not valid UTF-8.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from pyspark.sql import DataFrame, SparkSession

from lakeforge.sources.csv import read_csv
from lakeforge.sources.decoding import undecodable_files
from lakeforge.sources.json import read_json
from lakeforge.sources.locate import Location, locate
from lakeforge.sources.rows import (QUARANTINE_SCHEMA, REASONS, ROW_ID, SourceBatch, flag_bad, pinned_splits,
                                    quarantine_rows)
from lakeforge.sources.stored import read_delta, read_parquet

__all__ = ["QUARANTINE_SCHEMA", "READERS", "REASONS", "ROW_ID", "Location", "SourceBatch", "locate", "pinned_splits",
           "quarantine_rows", "read", "undecodable_files"]

READERS: dict[str, Callable[[SparkSession, SourceBatch, bool], DataFrame]] = {
    "csv": read_csv, "json": read_json, "parquet": read_parquet, "delta": read_delta,
}


def read(spark: SparkSession, batch: SourceBatch, typed: bool = True, tainted: Mapping[str, str] | None = None) -> DataFrame:
    """The batch's rows, typed, with `_bad` (see `flag_bad`); `typed` lets a reader leave `_raw` null
    for the rows it typed itself (the fast read), else every row's `_raw` is set (for the quarantine)."""
    return flag_bad(READERS[batch.source.format](spark, batch, typed), batch.source, dict(tainted or {}))
