"""Typing text values: a source column's text as its type (with its datetime `format`), and the flags to quarantine."""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakeforge.config import ColumnSpec, SourceSettings

__all__ = ["CORRUPT", "EPOCH_DIVISORS", "parse_text", "text_columns", "typed_by_reader"]

CORRUPT = "_corrupt_record"
EPOCH_DIVISORS = {"epoch_seconds": 1, "epoch_millis": 1000}
_MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31 23:59:59: beyond it timestamp_seconds overflows


def parse_text(value: Column, spec: ColumnSpec, null_values: Sequence[str]) -> tuple[Column, Column]:
    """`value` (text; or a number, for an epoch) as the column's type, null for the null tokens;
    and whether it could not be parsed."""
    missing = value.isNull() | value.isin(list(null_values)) if null_values else value.isNull()
    parsed = F.when(missing, F.lit(None)).otherwise(_typed(value, spec))
    return parsed, ~missing & parsed.isNull()


def _typed(value: Column, spec: ColumnSpec) -> Column:
    if spec.format is None:
        return value.try_cast(spec.type)
    if spec.format in EPOCH_DIVISORS:
        seconds = value.try_cast("decimal(38,9)") / EPOCH_DIVISORS[spec.format]
        in_range = seconds.between(-_MAX_EPOCH_SECONDS, _MAX_EPOCH_SECONDS)
        return F.when(in_range, F.timestamp_seconds(seconds)).cast(spec.type)
    return F.try_to_timestamp(value, F.lit(spec.format)).cast(spec.type)


def typed_by_reader(spec: ColumnSpec) -> bool:
    """Whether a text reader with a schema types this column itself (else it reads the text, typed here)."""
    return spec.format is None and spec.type != "string"


def text_columns(text: Column, source: SourceSettings, read: dict[str, Column] | None = None) -> list[Column]:
    """The reader-contract columns (see `lakeforge.sources.rows`) of rows whose values are the fields of
    `text`: a struct of each column's text and `_corrupt_record` (null unless the row could not be split).

    With `read` (the reader's own columns), `text` is null for the rows the reader read itself: their
    columns `typed_by_reader` keep the reader's values, the others' text is typed here.
    """
    columns, flags = [], []
    for i, (name, spec) in enumerate(source.columns.items()):
        value, failed = parse_text(text.getField(name), spec, source.null_values)
        if read is not None:
            by_reader = text.isNull()
            if typed_by_reader(spec):
                value, failed = F.when(by_reader, read[name]).otherwise(value), ~by_reader & failed
            else:
                value, failed = parse_text(F.when(by_reader, read[name]).otherwise(text.getField(name)), spec,
                                           source.null_values)
        columns.append(value.alias(name))
        flags.append(failed.alias(f"_unparsable_{i}"))
    return [*columns, *flags, text.alias("_raw")]
