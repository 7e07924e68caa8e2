"""The rows every reader returns, and what ingest derives from them: row ids, the `_bad` flag, quarantine rows.

A reader's frame holds the source's columns typed, and:

* `_raw`: a struct of each column's text (text formats) or stored value, for the quarantine table;
* `_malformed`: why the row could not be read at all, or null; `_unparsable_<i>`: column i's value
  could not be typed (the i-th of the source's columns);
* `_taints_file`: the row shows its file cannot be split into rows safely (a CSV quote left open);
* `_replaced`: the row's text holds U+FFFD, which a text reader puts for a byte it cannot decode, or such
  a byte itself (`replaced`);
* `_source_file`, and `_row_id`: ``<batch id>/<file key>/<position in the file>``.

Besides those flags, a double column's NaN or infinite value makes its row bad unless the column sets
`allow_nan` (Spark reads ``NaN``, ``Inf`` and ``Infinity`` as doubles, and ``NaN > 15`` is true).
Every reason that quotes a value quotes it with `quoted`, cut to `MAX_QUOTED` characters.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import SourceSettings
from lakeforge.quality.runner import reason_columns
from lakeforge.sources.locate import Location

__all__ = ["MAX_QUOTED", "QUARANTINE_SCHEMA", "REASONS", "ROW_ID", "SPLIT_BYTES", "SourceBatch", "file_key", "flag_bad",
           "pinned_splits", "quarantine_rows", "quoted", "replaced", "row_id"]

ROW_ID = "_row_id"
REASONS = "_reasons"
QUARANTINE_SCHEMA = f"{ROW_ID} string, _source_file string, _raw string, {REASONS} array<string>"
SPLIT_BYTES = 32 * 2**20
MAX_QUOTED = 200
_SPLIT_CONF = {"spark.sql.files.maxPartitionBytes": str(SPLIT_BYTES), "spark.sql.files.minPartitionNum": "1",
               "spark.sql.files.maxPartitionNum": None}
_pins = {"count": 0, "saved": {}}
_pins_lock = threading.Lock()


@dataclass(frozen=True)
class SourceBatch:
    """One batch of a source: its settings, where its rows are, and the batch id its row ids start with."""

    name: str
    source: SourceSettings
    location: Location
    batch_id: str

    def option(self, key: str, default: str = "") -> str:
        """A reader option as text, its key matched case-insensitively as Spark does."""
        values = {k.lower(): v for k, v in self.source.options.items()}
        value = values.get(key.lower(), default)
        return str(value).lower() if isinstance(value, bool) else str(value)

    @property
    def encoding(self) -> str:
        """The files' text encoding: the ``encoding`` option (or its alias ``charset``), default UTF-8."""
        return self.option("encoding", self.option("charset", "UTF-8"))


def quoted(value: str | Column) -> str | Column:
    """`value` in single quotes for a message or a quarantine reason; one longer than `MAX_QUOTED`
    characters is cut to them and followed by its full length: ``'9999...' (5242881 characters)``.
    A Column gives a Column of that text (null for null)."""
    if isinstance(value, Column):
        text = value.cast("string")
        cut = F.concat(F.lit("'"), F.substring(text, 1, MAX_QUOTED), F.lit("...' ("), F.length(text).cast("string"),
                       F.lit(" characters)"))
        return F.when(F.length(text) > MAX_QUOTED, cut).otherwise(F.concat(F.lit("'"), text, F.lit("'")))
    return f"'{value}'" if len(value) <= MAX_QUOTED else f"'{value[:MAX_QUOTED]}...' ({len(value)} characters)"


def replaced(texts: list[str]) -> Column:
    """`_replaced`: whether any of the text columns `texts` holds U+FFFD, or bytes that are not UTF-8 (a
    JSON line Spark could not parse is kept undecoded); never null."""
    text = F.concat_ws("", *[F.col(name) for name in texts])
    return (text.contains("\ufffd") | ~F.is_valid_utf8(text)).alias("_replaced")


def file_key(path: str) -> str:
    """A short stable key of a file's path, for row ids."""
    return hashlib.sha1(path.encode()).hexdigest()[:16]


def row_id(batch_id: str, file: Column | str, position: Column) -> Column:
    """``<batch id>/<file key>/<position>``: the same file read again in the same batch gives the same ids."""
    file = F.lit(f"{batch_id}/{file}/") if isinstance(file, str) else F.concat(F.lit(f"{batch_id}/"), file, F.lit("/"))
    return F.concat(file, position.cast("string")).alias(ROW_ID)


@contextmanager
def pinned_splits(spark: SparkSession) -> Iterator[None]:
    """Split landing files into partitions by size alone while ingest reads them.

    A file's position ids (``monotonically_increasing_id`` within its own read) depend on how it is
    split; Spark's default split size shrinks with the number of cores, so it is pinned to
    `SPLIT_BYTES` with ``minPartitionNum`` 1 (and no ``maxPartitionNum``). Re-entrant across the
    threads staging sources at once: the first entry sets the conf, the last exit restores it.
    """
    with _pins_lock:
        if _pins["count"] == 0:
            _pins["saved"] = {key: spark.conf.get(key, None) for key in _SPLIT_CONF}
            for key, value in _SPLIT_CONF.items():
                _set(spark, key, value)
        _pins["count"] += 1
    try:
        yield
    finally:
        with _pins_lock:
            _pins["count"] -= 1
            if _pins["count"] == 0:
                for key, value in _pins["saved"].items():
                    _set(spark, key, value)


def _set(spark: SparkSession, key: str, value: str | None) -> None:
    if value is None:
        spark.conf.unset(key)
    else:
        spark.conf.set(key, value)


def flag_bad(rows: DataFrame, source: SourceSettings, tainted: dict[str, str]) -> DataFrame:
    """`_bad`: the row is malformed, has an unparsable, NaN or infinite value, breaks a row rule or is in
    a `tainted` file (file -> reason; the reason, besides the row's own, is `_file_reason`)."""
    if tainted:
        in_tainted = F.col("_source_file").isin(list(tainted))
        reason = F.element_at(F.create_map(*[F.lit(x) for item in tainted.items() for x in item]), F.col("_source_file"))
        rows = rows.withColumn("_file_reason", F.when(in_tainted, reason))
    else:
        rows = rows.withColumn("_file_reason", F.lit(None).cast("string"))
    # Built from the flags, not from the reason texts: the filter then stays cheap and compiled.
    breaks = [F.col("_malformed").isNotNull(), F.col("_file_reason").isNotNull(),
              *[F.col(f"_unparsable_{i}") for i in range(len(source.columns))],
              *_non_finite(source).values(), *[rule.violation() for rule in source.quality if rule.scope == "row"]]
    return rows.withColumn("_bad", reduce(lambda a, b: a | b, breaks))


def _non_finite(source: SourceSettings) -> dict[str, Column]:
    """Double column -> whether its value is NaN or infinite (never null), for the columns without `allow_nan`."""
    return {name: F.isnan(name) | F.abs(F.col(name)).eqNullSafe(float("inf"))
            for name, spec in source.columns.items() if spec.type == "double" and not spec.allow_nan}


def quarantine_rows(rows: DataFrame, source: SourceSettings) -> DataFrame:
    """The bad rows with their text as JSON and their reasons: malformed, unparsable values, NaN or
    infinite values, rules broken."""
    reasons = [
        F.col("_malformed"),
        F.col("_file_reason"),
        *[F.when(F.col(f"_unparsable_{i}"), F.concat(F.lit(f"{name}: cannot parse "), quoted(F.col(f"_raw.{name}")),
                                                       F.lit(f" as {type_name}")))
          for i, (name, type_name) in enumerate(source.column_types().items())],
        *[F.when(flag, F.concat(F.lit(f"{name}: "), quoted(F.col(f"_raw.{name}")),
                                F.lit(f" is not a finite number (set allow_nan: true on column {name} to keep NaN "
                                      "and infinity)")))
          for name, flag in _non_finite(source).items()],
        *reason_columns(source.quality),
    ]
    return rows.where("_bad").select(ROW_ID, "_source_file", F.to_json("_raw").alias("_raw"),
                                     F.array_compact(F.array(*reasons)).alias(REASONS))
