"""Ingest landing sources into bronze Delta tables, quarantining bad rows with their reasons.

Every value is cast to its configured type and checked against the source's row rules, and rows
that fail go to ``<table>_quarantine`` with the reasons (unparsable values, names of the rules they
broke) and their source file, never dropped. Reading and typing each format is `lakeforge.sources`'
job; this step stages, checks, commits and reports. The job that writes the good rows reads the
files (CSV typed by Spark's reader) and also computes the source's column metrics (observed while
writing, see ``lakeforge.quality``), so a clean batch is read once; only a batch with bad rows is
read a second time, with every row's text, to quarantine them. The writes are staged
(``lakeforge.staging``): nothing is committed until every source of the batch has passed its checks
and no rule with severity ``fail`` failed.

Batches are by content (``lakeforge.batches``): an ingest reads only the files it has not seen, so
re-ingesting the same files is a no-op, and a changed file under an ingested name is refused unless
the batch holding it is to be replaced (``--replace-batch``). All sources of an ingest are committed,
with their ``ingested_files`` and ``quality_metrics`` rows, or none (``lakeforge.pending``).

Every bronze and quarantine row has a `_row_id`, from the batch id, its file and its position in
the file: re-ingesting the same files gives the same ids.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import mlflow
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakeforge import faults
from lakeforge.batches import (FILES_SCHEMA, FILES_TABLE, SourcePlan, content_batch_id, ingested_files,
                               location_contents, plan_batch)
from lakeforge.config import LakeforgeConfig, SourceSettings
from lakeforge.errors import IngestError
from lakeforge.quality.metrics import METRICS_TABLE, append_metrics, flag_anomalies, log_to_mlflow
from lakeforge.quality.report import console_table, summary, write_markdown
from lakeforge.quality.rules import MetricResult, RuleContext
from lakeforge.quality.runner import evaluate_scan, measure_shuffles, raise_on_failures, scan_aggregates
from lakeforge.results import StepResult
from lakeforge.sources import (QUARANTINE_SCHEMA, REASONS, ROW_ID, Location, SourceBatch, locate, pinned_splits,
                               quarantine_rows, read, undecodable_files)
from lakeforge.pending import PendingIngest, commit_all, complete_pending
from lakeforge.staging import BATCH_COLUMN, StagedBatch, stage_batch
from lakeforge.storage import Storage, storage_for
from lakeforge.tables import TableVersion, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

MAX_REASONS_SHOWN = 10


@dataclass(frozen=True)
class BatchChoice:
    """The user's say on an ingest's batch: its id (default: from the files' names and content), and
    whether files changed since they were ingested replace the batches holding them."""

    batch_id: str | None = None
    replace: bool = False

    def arguments(self) -> list[str]:
        """The same choice as ``lakeforge run ingest`` options."""
        return [*(["--batch-id", self.batch_id] if self.batch_id else []), *(["--replace-batch"] if self.replace else [])]


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

    def report(self) -> IngestReport:
        return IngestReport(self.source, self.batch_id, self.files, self.rows_read, self.good.rows,
                            self.quarantined.rows)


def _stage_good(spark: SparkSession, batch: SourceBatch, table_path: str, tainted: dict[str, str],
                replaces: tuple[str, ...]) -> tuple[StagedBatch, dict[str, Any]]:
    """Write the good rows (uncommitted) in the job that also counts the rows and evaluates the scan rules."""
    source = batch.source
    observed = Observation(f"ingest-{batch.name}")
    measured = read(spark, batch, typed=True, tainted=tainted).observe(
        observed, F.count(F.lit(1)).alias("_read"), F.count_if("_bad").alias("_quarantined"),
        F.collect_set(F.when(F.col("_taints_file"), F.col("_source_file"))).alias("_tainted"),
        F.collect_set(F.when(F.col("_replaced"), F.col("_source_file"))).alias("_replaced"),
        *scan_aggregates(source.quality, ~F.col("_bad")),
    )
    good = stage_batch(measured.where(~F.col("_bad")).select(*source.columns, "_source_file", ROW_ID), table_path,
                       batch.batch_id, replaces=replaces)
    return good, observed.get


def _taint_reasons(batch: SourceBatch, files: list[str]) -> dict[str, str]:
    """The reason given to every row of `files`, whose rows cannot be trusted (a CSV quote left open)."""
    return dict.fromkeys(files, f"file has an unbalanced quote, its rows may be split across lines "
                                f"(set sources.{batch.name}.options.multiLine: true)")


def stage_source(
    spark: SparkSession, source_name: str, source: SourceSettings, location: Location | str, batch_id: str | None,
    table_path: str, quarantine_path: str, replaces: tuple[str, ...] = (),
) -> StagedSource:
    """Parse, type-check, measure and write one source's files (`location`: what `locate` found, or a glob,
    path or URI to locate; for format delta, the table), committing nothing. The batch replaces the
    batches `replaces`; its id defaults to the files' content (`content_batch_id`).

    One Spark job reads the files, evaluates every row and scan rule (observed while writing) and
    writes the good rows; a second one, only if there are bad rows, reads every row's text and
    writes those rows with their text and reasons. If a CSV file turns out to hold a quote left open
    (a quoted field spanning lines, read without ``multiLine``), its rows are all quarantined: the
    good rows are staged again without them. So are the rows of a UTF-8 file holding an invalid byte
    (`undecodable_files`), with the byte's offset.
    Raises, leaving both tables untouched, if more than `max_rejected_fraction` of the rows would be
    quarantined.
    """
    with pinned_splits(spark):
        if isinstance(location, str):
            location = locate(spark, source_name, source, location)
        if batch_id is None:
            batch_id = content_batch_id(source_name, location_contents(Storage(), location))
        batch = SourceBatch(source_name, source, location, batch_id)
        tainted: dict[str, str] = {}
        good, scan = _stage_good(spark, batch, table_path, tainted, replaces)
        tainted = {**_taint_reasons(batch, sorted(scan["_tainted"])),
                   **undecodable_files(spark, batch, scan["_replaced"])}
        if tainted:
            good.abort()
            good, scan = _stage_good(spark, batch, table_path, tainted, replaces)
        rows_read, rows_quarantined = scan["_read"], scan["_quarantined"]
        try:  # whatever fails from here on, the good rows' staged files are deleted
            bad_rows = (quarantine_rows(read(spark, batch, typed=False, tainted=tainted), source) if rows_quarantined
                        else spark.createDataFrame([], QUARANTINE_SCHEMA))
            if rows_read and rows_quarantined / rows_read > source.max_rejected_fraction:
                raise IngestError(_quarantine_summary(source_name, rows_read, rows_quarantined, bad_rows,
                                                      source.max_rejected_fraction))
            quarantined = stage_batch(bad_rows, quarantine_path, batch.batch_id, replaces=replaces,
                                      known_empty=rows_quarantined == 0)
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
    """Commit a staged batch on its own: quarantined rows first, so a failure in between never hides rows.
    (`run` commits all its sources together, see `lakeforge.pending`.)"""
    staged.quarantined.commit()
    staged.good.commit()
    return staged.report()


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


def _kept_rows(spark: SparkSession, table: str, path: str, replaced: tuple[str, ...]) -> DataFrame | None:
    """The committed rows of `table` that a batch replacing `replaced` keeps (None: no table yet)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    rows = read_pinned(spark, table, path)[0]
    return rows.where(~F.col(BATCH_COLUMN).isin(list(replaced))) if replaced else rows


def _newest_batch_rows(rows: DataFrame | None) -> int | None:
    """Rows of the most recently ingested batch among `rows`, None if there are none."""
    if rows is None:
        return None
    newest = rows.groupBy(BATCH_COLUMN).agg(F.max("_ingested_at").alias("at"), F.count(F.lit(1)).alias("rows"))
    row = newest.orderBy(F.desc("at")).head()
    return None if row is None else row["rows"]


def _or_empty(rows: DataFrame | None, like: DataFrame) -> DataFrame:
    return rows if rows is not None else like.limit(0)


def _assess_all(
    spark: SparkSession, config: LakeforgeConfig, staged: list[StagedSource], run_time: datetime
) -> list[MetricResult]:
    """Metrics of every staged batch; `references` rules see the other sources' batches of this run
    (or with ``across: table`` their whole tables with this run's batches)."""
    batches = {batch.source: batch for batch in staged}

    def kept(source: str) -> DataFrame | None:
        replaced = batches[source].good.replaces if source in batches else ()
        return _kept_rows(spark, bronze_table(source), config.table_path(bronze_table(source)), replaced)

    def reference(source: str) -> DataFrame:
        if source in batches:
            return batches[source].good_rows
        return read_pinned(spark, bronze_table(source), config.table_path(bronze_table(source)))[0]

    def reference_table(source: str) -> DataFrame:
        committed = kept(source)
        if source not in batches:
            return reference(source)
        new = batches[source].good_rows
        return new if committed is None else new.unionByName(committed)

    results: list[MetricResult] = []
    for batch in staged:
        source = config.sources[batch.source]
        table = bronze_table(batch.source)
        needs_previous = any(rule.rule == "row_count" for rule in source.quality)
        previous = _newest_batch_rows(kept(batch.source)) if needs_previous else None
        ctx = RuleContext(table, run_time, batch.rows_read, batch.rows_read - batch.rows_quarantined, previous, reference,
                          reference_table, lambda source=batch.source: _or_empty(kept(source), batches[source].good_rows))
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


def _plan_all(spark: SparkSession, config: LakeforgeConfig, ledger_version: int | None,
              choice: BatchChoice) -> tuple[dict[str, SourcePlan], int]:
    """Each source's batch of files not ingested yet (sources with none are left out), and the files skipped."""
    ledger_path = config.table_path(FILES_TABLE)
    seen = ingested_files(spark, ledger_path, ledger_version)
    storage, plans, skipped = storage_for(config), {}, 0
    with pinned_splits(spark):
        for name, source in config.sources.items():
            location = locate(spark, name, source, config.source_path(name))
            plan = plan_batch(name, location, storage, seen, choice.replace, choice.batch_id)
            skipped += len(location.paths) if plan is None else plan.skipped
            if plan is not None:
                plans[name] = plan
    return plans, skipped


def _stage_and_report(spark: SparkSession, config: LakeforgeConfig, plan: SourcePlan) -> StagedSource:
    started = time.perf_counter()
    name = plan.source
    staged = stage_source(spark, name, config.sources[name], plan.location, plan.batch_id,
                          config.table_path(bronze_table(name)), config.table_path(quarantine_table(name)),
                          plan.replaces)
    print(f"[lakeforge] ingest: staged {name}: {staged.rows_read:,} rows read, {staged.rows_quarantined:,} to quarantine "
          f"({time.perf_counter() - started:.1f}s)", flush=True)
    return staged


def _stage_all(spark: SparkSession, config: LakeforgeConfig, plans: dict[str, SourcePlan]) -> list[StagedSource]:
    """Stage every planned source, each in its own thread: small sources' driver work and jobs overlap the
    big one's job. If any fails, the others' staged files are deleted and the first failure is raised."""
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="ingest-stage") as pool:
        futures = [pool.submit(_stage_and_report, spark, config, plan) for plan in plans.values()]
    failures = [f.exception() for f in futures if f.exception() is not None]
    staged = [f.result() for f in futures if f.exception() is None]
    if failures:
        for batch in staged:
            batch.abort()
        raise failures[0]
    return staged


def _stage_ledger(spark: SparkSession, config: LakeforgeConfig, plans: dict[str, SourcePlan], ingest_id: str,
                  planned_on: int | None) -> StagedBatch:
    """The ``ingested_files`` rows of this ingest, staged; refused if another ingest committed since planning."""
    rows = [(plan.source, file, digest, size, plan.batch_id)
            for plan in plans.values() for file, digest, size in plan.entries]
    ledger = stage_batch(spark.createDataFrame(rows, FILES_SCHEMA), config.table_path(FILES_TABLE), ingest_id)
    if ledger.read_version != (-1 if planned_on is None else planned_on):
        ledger.abort()
        raise IngestError(f"another ingest committed to {ledger.path} while this one ran; nothing of this one was "
                          "committed: run ingest again (the files the other ingest took are skipped)")
    return ledger


def run(spark: SparkSession, config: LakeforgeConfig, choice: BatchChoice = BatchChoice()) -> StepResult:
    """Ingest the files of every configured source not ingested yet; all are staged and checked, then
    committed together."""
    run_time = _run_time(config)
    metrics_path = config.table_path(METRICS_TABLE)
    seconds: dict[str, float] = {}
    with step_run(config, "ingest"):
        for line in complete_pending(spark, config):
            print(f"[lakeforge] ingest: {line}", flush=True)
        with _phase(seconds, "plan"):  # which files are new: checksums against ingested_files
            ledger_path = config.table_path(FILES_TABLE)
            planned_on = latest_version(spark, ledger_path) if DeltaTable.isDeltaTable(spark, ledger_path) else None
            plans, skipped = _plan_all(spark, config, planned_on, choice)
        if not plans:
            print(f"[lakeforge] ingest: nothing new, all {skipped} file(s) were ingested before", flush=True)
            return StepResult("ingest", rows_in=0, rows_out=0, details={"files_skipped": skipped})
        with _phase(seconds, "stage"):  # read, type, row and scan rules, write uncommitted
            staged = _stage_all(spark, config, plans)
        try:
            with _phase(seconds, "check"):  # shuffle rules, anomalies
                results = _assess_all(spark, config, staged, run_time)
            _publish(results, config, run_time)
            batch_ids = {bronze_table(b.source): b.batch_id for b in staged}
            if any(r.status == "fail" for r in results):
                append_metrics(spark, metrics_path, results, {}, batch_ids, run_time)
                raise_on_failures(results)
            faults.checkpoint("ingest:checked")
            ingest_id = f"ingest-{run_time:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            ledger = _stage_ledger(spark, config, plans, ingest_id, planned_on)
        except BaseException:
            for batch in staged:
                batch.abort()
            raise
        tables = [table for batch in staged for table in (batch.quarantined, batch.good)]
        pending = PendingIngest(ingest_id, ledger.record(), [t.record() for t in tables],
                                [asdict(r) for r in results], batch_ids, run_time.isoformat(), time.time(),
                                socket.gethostname(), os.getpid())
        with _phase(seconds, "commit"):
            versions = commit_all(spark, config, ledger, tables, pending)
        reports = [batch.report() for batch in staged]
        for report in reports:
            mlflow.log_metrics({f"{report.source}.rows_read": report.rows_read,
                                f"{report.source}.rows_written": report.rows_written,
                                f"{report.source}.rows_quarantined": report.rows_quarantined})
        outputs = [TableVersion(bronze_table(b.source), b.good.path, versions[b.good.path]) for b in staged]
        log_tables([*outputs, TableVersion(METRICS_TABLE, metrics_path, latest_version(spark, metrics_path))], "output")
    return StepResult(
        "ingest",
        rows_in=sum(r.rows_read for r in reports),
        rows_out=sum(r.rows_written for r in reports),
        details={"quality": summary(results), "phase_seconds": seconds, "files_skipped": skipped,
                 **{r.source: f"{r.rows_read} read = {r.rows_written} written + {r.rows_quarantined} quarantined"
                    for r in reports}},
    )
