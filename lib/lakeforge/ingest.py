"""Ingest landing sources into bronze Delta tables, quarantining bad rows with their reasons.

Every value is cast to its configured type and checked against the source's row rules, and rows
that fail go to ``<table>_quarantine`` with the reasons (unparsable values, names of the rules they
broke) and their source file, never dropped. Reading and typing each format is `lakeforge.sources`'
job; this step stages, checks, commits and reports. The job that writes the good rows reads the
files (CSV typed by Spark's reader) and also computes the source's column metrics (observed while
writing, see ``lakeforge.quality``), so a clean batch is read once; only a batch with bad rows is
read a second time, with every row's text, to quarantine them. The writes are staged
(``lakeforge.staging``): nothing is committed until every source of the batch has passed its checks
and no rule with severity ``fail`` failed. Re-ingesting a batch id replaces that batch only.

Every bronze and quarantine row has a `_row_id`, from the batch id, its file and its position in
the file: re-ingesting the same files gives the same ids.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import mlflow
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig, SourceSettings
from lakeforge.errors import IngestError
from lakeforge.quality.metrics import METRICS_TABLE, append_metrics, flag_anomalies, log_to_mlflow
from lakeforge.quality.report import console_table, summary, write_markdown
from lakeforge.quality.rules import MetricResult, RuleContext
from lakeforge.quality.runner import evaluate_scan, measure_shuffles, raise_on_failures, scan_aggregates
from lakeforge.results import StepResult
from lakeforge.sources import (QUARANTINE_SCHEMA, REASONS, ROW_ID, Location, SourceBatch, locate, pinned_splits,
                               quarantine_rows, read)
from lakeforge.staging import StagedBatch, stage_batch
from lakeforge.storage import storage_for
from lakeforge.tables import TableVersion, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

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
class StagedSource:
    """One source's batch, measured and written to its two tables but not committed yet."""

    source: str
    batch_id: str
    files: tuple[str, ...]
    rows_read: int
    rows_quarantined: int
    scan: dict[str, Any]
    good: StagedBatch
    quarantined: StagedBatch

    @property
    def good_rows(self) -> DataFrame:
        """The rows that will be written, read back from their staged files."""
        return self.good.frame()

    def abort(self) -> None:
        """Delete whatever was staged and not committed."""
        self.good.abort()
        self.quarantined.abort()


def default_batch_id(source: str, location: Location) -> str:
    """A batch id derived from the file names and sizes (or the table version), so the same input maps
    to the same batch."""
    return f"{source}-{hashlib.sha1(location.fingerprint.encode()).hexdigest()[:12]}"


def _stage_good(spark: SparkSession, batch: SourceBatch, table_path: str,
                tainted: dict[str, str]) -> tuple[StagedBatch, dict[str, Any]]:
    """Write the good rows (uncommitted) in the job that also counts the rows and evaluates the scan rules."""
    source = batch.source
    observed = Observation(f"ingest-{batch.name}")
    measured = read(spark, batch, typed=True, tainted=tainted).observe(
        observed, F.count(F.lit(1)).alias("_read"), F.count_if("_bad").alias("_quarantined"),
        F.collect_set(F.when(F.col("_taints_file"), F.col("_source_file"))).alias("_tainted"),
        *scan_aggregates(source.quality, ~F.col("_bad")),
    )
    good = stage_batch(measured.where(~F.col("_bad")).select(*source.columns, "_source_file", ROW_ID), table_path,
                       batch.batch_id)
    return good, observed.get


def _taint_reasons(batch: SourceBatch, files: list[str]) -> dict[str, str]:
    """The reason given to every row of `files`, whose rows cannot be trusted (a CSV quote left open)."""
    return dict.fromkeys(files, f"file has an unbalanced quote, its rows may be split across lines "
                                f"(set sources.{batch.name}.options.multiLine: true)")


def stage_source(
    spark: SparkSession, source_name: str, source: SourceSettings, path: str, batch_id: str | None,
    table_path: str, quarantine_path: str,
) -> StagedSource:
    """Parse, type-check, measure and write one source's files (`path`: a glob, path or URI; for
    format delta, the table), committing nothing.

    One Spark job reads the files, evaluates every row and scan rule (observed while writing) and
    writes the good rows; a second one, only if there are bad rows, reads every row's text and
    writes those rows with their text and reasons. If a CSV file turns out to hold a quote left open
    (a quoted field spanning lines, read without ``multiLine``), its rows are all quarantined: the
    good rows are staged again without them.
    Raises, leaving both tables untouched, if more than `max_rejected_fraction` of the rows would be
    quarantined.
    """
    with pinned_splits(spark):
        location = locate(spark, source_name, source, path)
        batch = SourceBatch(source_name, source, location, batch_id or default_batch_id(source_name, location))
        tainted: dict[str, str] = {}
        good, scan = _stage_good(spark, batch, table_path, tainted)
        if scan["_tainted"]:
            good.abort()
            tainted = _taint_reasons(batch, sorted(scan["_tainted"]))
            good, scan = _stage_good(spark, batch, table_path, tainted)
        rows_read, rows_quarantined = scan["_read"], scan["_quarantined"]
        try:  # whatever fails from here on, the good rows' staged files are deleted
            bad_rows = (quarantine_rows(read(spark, batch, typed=False, tainted=tainted), source) if rows_quarantined
                        else spark.createDataFrame([], QUARANTINE_SCHEMA))
            if rows_read and rows_quarantined / rows_read > source.max_rejected_fraction:
                raise IngestError(_quarantine_summary(source_name, rows_read, rows_quarantined, bad_rows,
                                                      source.max_rejected_fraction))
            quarantined = stage_batch(bad_rows, quarantine_path, batch.batch_id, known_empty=rows_quarantined == 0)
        except BaseException:
            good.abort()
            raise
    staged = StagedSource(source_name, batch.batch_id, location.paths, rows_read, rows_quarantined, scan, good,
                          quarantined)
    if good.rows + quarantined.rows != rows_read:
        staged.abort()
        raise IngestError(
            f"source '{source_name}': reconciliation failed, read {rows_read} rows but staged "
            f"{good.rows} to write and {quarantined.rows} to quarantine; nothing was written"
        )
    return staged


def _quarantine_summary(source: str, rows_read: int, rows_quarantined: int, bad_rows: DataFrame, limit: float) -> str:
    top = (
        bad_rows.select("_source_file", F.explode(REASONS).alias("reason"))
        .groupBy("_source_file", "reason")
        .count()
        .orderBy(F.desc("count"), "reason")
        .limit(MAX_REASONS_SHOWN)
        .collect()
    )
    lines = [f"  {r['_source_file']}: {r['reason']} ({r['count']} rows)" for r in top]
    return (
        f"source '{source}': {rows_quarantined} of {rows_read} rows ({rows_quarantined / rows_read:.2%}) "
        f"cannot be parsed or break row rules, above max_rejected_fraction={limit}; nothing was written:\n"
        + "\n".join(lines)
    )


def assess_source(staged: StagedSource, source: SourceSettings, ctx: RuleContext) -> list[MetricResult]:
    """The batch's metrics: its row counts, its rules observed while staging, then its shuffle rules."""
    counts = [
        MetricResult(ctx.table, "ingest", "rows_read", staged.rows_read, "pass"),
        MetricResult(ctx.table, "ingest", "rows_quarantined", staged.rows_quarantined, "pass",
                     f"<= {source.max_rejected_fraction:.2%} of rows"),
    ]
    return counts + evaluate_scan(source.quality, staged.scan, ctx) + measure_shuffles(source.quality, staged.good_rows, ctx)


def commit_source(staged: StagedSource) -> IngestReport:
    """Commit a staged batch: quarantined rows first, so a failure in between never hides rows."""
    staged.quarantined.commit()
    staged.good.commit()
    return IngestReport(staged.source, staged.batch_id, staged.files, staged.rows_read, staged.good.rows,
                        staged.quarantined.rows)


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
    spark: SparkSession, config: LakeforgeConfig, staged: list[StagedSource], run_time: datetime
) -> list[MetricResult]:
    """Metrics of every staged batch; `references` rules see the other sources' batches of this run."""
    batches = {batch.source: batch for batch in staged}

    def reference(source: str) -> DataFrame:
        if source in batches:
            return batches[source].good_rows
        return read_pinned(spark, bronze_table(source), config.table_path(bronze_table(source)))[0]

    results: list[MetricResult] = []
    for batch in staged:
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
    report, text = write_markdown(results, storage_for(config), config.location(config.quality.report_dir), "ingest",
                                  run_time)
    mlflow.log_text(text, report.rsplit("/", 1)[-1])
    log_to_mlflow(results)


@contextmanager
def _phase(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Time one phase of the step into `seconds` (by name) and print it when done."""
    started = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - started, 2)
    print(f"[lakeforge] ingest: {name} done in {seconds[name]:.1f}s", flush=True)


def _stage_and_report(spark: SparkSession, config: LakeforgeConfig, name: str, batch_id: str | None) -> StagedSource:
    started = time.perf_counter()
    staged = stage_source(spark, name, config.sources[name], config.source_path(name), batch_id,
                          config.table_path(bronze_table(name)), config.table_path(quarantine_table(name)))
    print(f"[lakeforge] ingest: staged {name}: {staged.rows_read:,} rows read, {staged.rows_quarantined:,} to quarantine "
          f"({time.perf_counter() - started:.1f}s)", flush=True)
    return staged


def _stage_all(spark: SparkSession, config: LakeforgeConfig, batch_id: str | None) -> list[StagedSource]:
    """Stage every source, each in its own thread: small sources' driver work and jobs overlap the big
    one's job. If any fails, the others' staged files are deleted and the first failure is raised."""
    with ThreadPoolExecutor(max_workers=len(config.sources), thread_name_prefix="ingest-stage") as pool:
        futures = [pool.submit(_stage_and_report, spark, config, name, batch_id) for name in config.sources]
    failures = [f.exception() for f in futures if f.exception() is not None]
    staged = [f.result() for f in futures if f.exception() is None]
    if failures:
        for batch in staged:
            batch.abort()
        raise failures[0]
    return staged


def run(spark: SparkSession, config: LakeforgeConfig, batch_id: str | None = None) -> StepResult:
    """Ingest every configured source; all are staged and checked before any is committed."""
    run_time = _run_time(config)
    metrics_path = config.table_path(METRICS_TABLE)
    seconds: dict[str, float] = {}
    with step_run(config, "ingest"):
        with _phase(seconds, "stage"):  # read, type, row and scan rules, write uncommitted
            staged = _stage_all(spark, config, batch_id)
        try:
            with _phase(seconds, "check"):  # shuffle rules, anomalies
                results = _assess_all(spark, config, staged, run_time)
            _publish(results, config, run_time)
            batch_ids = {bronze_table(b.source): b.batch_id for b in staged}
            if any(r.status == "fail" for r in results):
                append_metrics(spark, metrics_path, results, {}, batch_ids, run_time)
                raise_on_failures(results)
            reports, outputs = [], []
            with _phase(seconds, "commit"):
                for batch in staged:
                    reports.append(commit_source(batch))
                    table = bronze_table(batch.source)
                    outputs.append(TableVersion(table, batch.good.path, latest_version(spark, batch.good.path)))
        finally:
            for batch in staged:
                batch.abort()
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
        details={"quality": summary(results), "phase_seconds": seconds,
                 **{r.source: f"{r.rows_read} read = {r.rows_written} written + {r.rows_quarantined} quarantined"
                    for r in reports}},
    )
