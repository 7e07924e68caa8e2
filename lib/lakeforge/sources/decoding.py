"""Invalid UTF-8 in text landing files: found and located to its byte, never replaced silently.

Spark's CSV and JSON readers decode leniently: an invalid byte (a latin-1 ``é`` in a UTF-8 file)
becomes U+FFFD in the value and the row is stored. So the read that writes a batch also notes the
files with a U+FFFD in any field of any row (`_replaced`, see `lakeforge.sources.rows`; no extra
job), and only those files, if UTF-8 (the default ``encoding``), are read again on the driver up to
their first invalid byte, for its byte offset and line (`first_invalid_utf8`; a U+FFFD written as
such is valid). Every row of such a file is quarantined with that reason (`undecodable_files`); an
invalid byte in a CSV file's header refuses the file, as its columns cannot be named
(`refuse_undecodable_header`).
"""
from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from lakeforge.errors import IngestError
from lakeforge.sources.rows import SourceBatch

__all__ = ["InvalidByte", "first_invalid_utf8", "open_decompressed", "refuse_undecodable_header", "undecodable_files"]

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


def refuse_undecodable_header(spark: SparkSession, batch: SourceBatch, path: str) -> None:
    """Raise `IngestError` naming the file and byte if a UTF-8 CSV file's header (line 1) holds an invalid byte."""
    found = first_invalid_utf8(spark, path) if _is_utf8(batch) else None
    if found is not None and found.line == 1:
        raise IngestError(f"{path}: the header is not valid UTF-8: {found}; {_hint(batch)}")


def undecodable_files(spark: SparkSession, batch: SourceBatch, suspects: Iterable[str]) -> dict[str, str]:
    """File -> the reason to quarantine every row of it, for the `suspects` (files whose text holds
    U+FFFD, see `lakeforge.sources.rows`) that are UTF-8 and hold an invalid byte."""
    if not _is_utf8(batch):
        return {}
    found = {path: first_invalid_utf8(spark, path) for path in sorted(suspects)}
    return {path: f"file is not valid UTF-8: {byte}; {_hint(batch)}" for path, byte in found.items() if byte is not None}


def _is_utf8(batch: SourceBatch) -> bool:
    return batch.source.format in ("csv", "json") and batch.encoding.lower().replace("-", "") == "utf8"


def _hint(batch: SourceBatch) -> str:
    return f"set sources.{batch.name}.options.encoding to the file's encoding (e.g. ISO-8859-1) or fix the file"
