"""Invalid UTF-8 in text landing files: found and located to its byte, never replaced silently.

Spark's CSV and JSON readers decode leniently: an invalid byte (a latin-1 ``é`` in a UTF-8 file)
becomes U+FFFD in the value and the row is stored. So before a batch of UTF-8 files (the default
``encoding``) is read, one Spark job checks the bytes of every line (`is_valid_utf8` on the text
reader's lines, which it does not decode), and the few files it flags are read again on the driver up
to their first invalid byte, for its byte offset and line (`first_invalid_utf8`). Every row of such a
file is quarantined with that reason; an invalid byte in a CSV file's header refuses the file, as its
columns cannot be named (`undecodable_files`).
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.errors import IngestError
from lakeforge.sources.rows import SourceBatch

__all__ = ["InvalidByte", "first_invalid_utf8", "open_decompressed", "undecodable_files"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class InvalidByte:
    """The first byte of a file that is not UTF-8: its offset (from 0, in the decompressed file), value and line."""

    offset: int
    value: int
    line: int

    def __str__(self) -> str:
        return f"byte 0x{self.value:02X} at byte offset {self.offset} (line {self.line})"


def open_decompressed(spark: SparkSession, path: str):
    """A Java InputStream of the file's bytes, decompressed by the Hadoop codec its name implies (if any)."""
    jvm = spark._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark._jsc.hadoopConfiguration()
    stream = hadoop_path.getFileSystem(conf).open(hadoop_path)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(hadoop_path)
    return stream if codec is None else codec.createInputStream(stream)


def first_invalid_utf8(spark: SparkSession, path: str) -> InvalidByte | None:
    """The file's first byte that does not decode as UTF-8 (a sequence cut short at its end included), or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    stream = open_decompressed(spark, path)
    offset, line = 0, 1  # bytes and lines before `chunk`
    try:
        while True:
            chunk = bytes(stream.readNBytes(_CHUNK))
            pending = decoder.getstate()[0]  # the start of a sequence the previous chunk cut (no newline in it)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                data = pending + chunk  # what the error's positions count in
                return InvalidByte(offset - len(pending) + error.start, data[error.start],
                                   line + data.count(b"\n", 0, error.start))
            if not chunk:
                return None
            offset, line = offset + len(chunk), line + chunk.count(b"\n")
    finally:
        stream.close()


def undecodable_files(spark: SparkSession, batch: SourceBatch) -> dict[str, str]:
    """File -> the reason to quarantine every row of it, for the batch's UTF-8 CSV and JSON files holding
    an invalid byte. Raises `IngestError` naming the file and byte if it is in a CSV file's header."""
    if batch.source.format not in ("csv", "json") or batch.encoding.lower().replace("-", "") != "utf8":
        return {}
    hint = f"set sources.{batch.name}.options.encoding to the file's encoding (e.g. ISO-8859-1) or fix the file"
    reasons = {}
    for path in _flagged(spark, batch.location.paths):
        found = first_invalid_utf8(spark, path)
        if found is None:
            continue
        if batch.source.format == "csv" and found.line == 1:
            raise IngestError(f"{path}: the header is not valid UTF-8: {found}; {hint}")
        reasons[path] = f"file is not valid UTF-8: {found}; {hint}"
    return reasons


def _flagged(spark: SparkSession, paths: tuple[str, ...]) -> list[str]:
    """The files holding a line that is not valid UTF-8: one Spark job over all of them."""
    lines = reduce(DataFrame.unionByName, [spark.read.text(path).select(F.lit(path).alias("file"), "value")
                                           for path in paths])
    return sorted(lines.agg(F.collect_set(F.when(~F.is_valid_utf8("value"), F.col("file")))).head()[0])
