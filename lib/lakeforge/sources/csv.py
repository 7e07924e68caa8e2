"""CSV landing files: typed by Spark's CSV reader, with a text fallback for the rows it cannot type."""
from __future__ import annotations

import csv
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.errors import IngestError
from lakeforge.sources.decoding import open_decompressed, refuse_undecodable_header
from lakeforge.sources.rows import SourceBatch, file_key, quoted, replaced, row_id
from lakeforge.sources.text import CORRUPT, text_columns, typed_by_reader

__all__ = ["read_csv"]


def read_csv(spark: SparkSession, batch: SourceBatch, typed: bool) -> DataFrame:
    """Every file of the batch, each read on its own (its header names its columns, in any order).

    `typed`: the reader types the columns it can (`typed_by_reader`) and only the rows it could not
    type are typed from their text; else every value is read as text and typed here (slower, but
    `_raw` then holds every row's text, as the quarantine table needs).
    """
    return reduce(DataFrame.unionByName, [_read_file(spark, batch, path, typed) for path in batch.location.paths])


def _read_file(spark: SparkSession, batch: SourceBatch, path: str, typed: bool) -> DataFrame:
    source = batch.source
    header = _header(spark, batch, path)

    def schema(as_text: bool) -> str:
        types = [(c, source.columns[c].type if c in source.columns and not as_text and typed_by_reader(source.columns[c])
                  else "string") for c in header]
        return ", ".join(f"`{name.replace('`', '``')}` {type_name}" for name, type_name in [*types, (CORRUPT, "string")])

    reader = spark.read.options(**source.options).schema(schema(not typed)).option("header", True) \
        .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
    columns = [*source.columns, CORRUPT]
    as_text = [c for c in header if c not in source.columns or not typed or not typed_by_reader(source.columns[c])]
    line = []
    if typed:  # the reader's own null token; a typed column holding another one falls back to `_line`
        reader = reader.option("nullValue", next((v for v in source.null_values if v), ""))
        split = F.from_csv(F.col(CORRUPT), schema(True), {**_split_options(batch), "columnNameOfCorruptRecord": CORRUPT})
        text = F.struct(*[split.getField(c).alias(c) for c in columns])
        line = [F.when(F.col(CORRUPT).isNotNull(), text).alias("_line")]  # built only for the rows needing it
    # The position is taken right above the file's own scan: it depends on the file's splits only.
    raw = reader.csv(path).select(*columns, *line, replaced([*as_text, CORRUPT]), F.lit(path).alias("_source_file"),
                                  row_id(batch.batch_id, file_key(path), F.monotonically_increasing_id()))
    text = F.col("_line") if typed else F.struct(*[F.col(c) for c in columns])
    read = {c: F.col(c) for c in source.columns} if typed else None
    return raw.select(*text_columns(text, source, read), *_malformed(batch, text.getField(CORRUPT)), "_replaced",
                      "_source_file", "_row_id")


def _split_options(batch: SourceBatch) -> dict[str, str]:
    """The reader options that decide how a line splits into fields, for `from_csv`."""
    keys = ("sep", "delimiter", "quote", "escape", "charToEscapeQuoteEscaping", "ignoreLeadingWhiteSpace",
            "ignoreTrailingWhiteSpace", "unescapedQuoteHandling")
    return {k: batch.option(k) for k in keys if batch.option(k)}


def _malformed(batch: SourceBatch, line: Column) -> list[Column]:
    """`_malformed` for a line that could not be split (`line` not null), naming the likely cause when a
    quote is left open: without ``multiLine``, a quoted field spanning lines is split into such lines,
    and the rows around them cannot be trusted (`_taints_file`)."""
    quote, escape = batch.option("quote", '"'), batch.option("escape", "\\")
    unescaped = F.replace(line, F.lit(escape + quote), F.lit("")) if escape and quote else line
    open_quote = line.isNotNull() & ((F.length(unescaped) - F.length(F.replace(unescaped, F.lit(quote), F.lit("")))) % 2 == 1)
    spans_lines = open_quote & F.lit(batch.option("multiLine", "false") != "true")
    hint = (f"malformed row: unbalanced quote, a quoted field may span lines "
            f"(set sources.{batch.name}.options.multiLine: true)")
    malformed = F.when(line.isNotNull(), F.when(spans_lines, F.lit(hint)).otherwise(F.lit("malformed row")))
    return [malformed.alias("_malformed"), spans_lines.alias("_taints_file")]


def _header(spark: SparkSession, batch: SourceBatch, path: str) -> list[str]:
    """The names to read the file's columns by: its header (the first line, decompressed if need be, a
    byte order mark dropped; refused if not UTF-8 where it should be), checked to hold each of the
    source's columns once. The columns the source
    does not keep are read as ``_unused_<position>``, whatever (and however often) their names."""
    jvm = spark._jvm
    lines = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(open_decompressed(spark, path), batch.encoding))
    try:
        first = (lines.readLine() or "").removeprefix("\ufeff")
    finally:
        lines.close()
    if "\ufffd" in first:
        refuse_undecodable_header(spark, batch, path)
    sep = batch.option("sep", batch.option("delimiter", ","))
    header = next(csv.reader([first], delimiter=sep, quotechar=batch.option("quote", '"') or '"'), [])
    shown = f"(header has: {quoted(', '.join(header)) if header else 'nothing'})"
    missing = [c for c in batch.source.columns if c not in header]
    if missing:
        raise IngestError(f"{path}: missing column(s) {', '.join(missing)} required by source '{batch.name}' {shown}")
    repeated = [c for c in batch.source.columns if header.count(c) > 1]
    if repeated:
        raise IngestError(f"{path}: column(s) {', '.join(repeated)} appear more than once in the header, so which one "
                          f"source '{batch.name}' reads is ambiguous {shown}; rename or drop the copies")
    return [name if name in batch.source.columns else f"_unused_{i}" for i, name in enumerate(header)]
