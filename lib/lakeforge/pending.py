"""An ingest's commit across several Delta tables: entirely, or not at all.

Delta commits one table atomically; an ingest writes several (each source's bronze and quarantine
tables, the ``ingested_files`` ledger, ``quality_metrics``). Before committing, it writes a pending
record (each table's staged actions and the metrics rows) under ``<storage_root>/_pending_ingests/``.
Then it commits the ledger in the transaction that began when it read the ledger to plan: that commit
is the point of no return, and it fails if another ingest committed meanwhile (then nothing of this
one is visible). Then each table is committed with the ingest's application id (Delta's
``SetTransaction``) and the record is deleted.

A run killed after the ledger commit leaves its record: the next ingest completes it before anything
else, each table exactly once (a table holding the id is skipped). A record whose ledger commit never
happened is discarded with its staged files once its writer is gone: a process of this host that no longer
exists, or (another host) a record a minute old, since a live ingest commits its ledger right after
writing its record.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession

from lakeforge import faults
from lakeforge.config import LakeforgeConfig
from lakeforge.errors import IngestError
from lakeforge.quality.metrics import METRICS_TABLE, append_metrics
from lakeforge.quality.rules import MetricResult
from lakeforge.staging import StagedBatch, commit_record, delete_staged_files
from lakeforge.storage import storage_for
from lakeforge.tables import delta_log, is_write_conflict, latest_version

__all__ = ["PendingIngest", "commit_all", "complete_pending"]

FOLDER = "_pending_ingests"
STALE_SECONDS = 60


@dataclass
class PendingIngest:
    """Everything one ingest commits: the ledger's staged batch and the tables' (in commit order)."""

    ingest_id: str
    ledger: dict[str, Any]
    tables: list[dict[str, Any]]
    results: list[dict[str, Any]]
    batch_ids: dict[str, str]
    run_time: str
    written_at: float
    host: str = ""
    pid: int = 0

    @property
    def app_id(self) -> str:
        return f"lakeforge-{self.ingest_id}"

    def location(self, config: LakeforgeConfig) -> str:
        return config.location(FOLDER, f"{self.ingest_id}.json")


def commit_all(spark: SparkSession, config: LakeforgeConfig, ledger: StagedBatch, tables: list[StagedBatch],
               pending: PendingIngest) -> dict[str, int]:
    """Commit the ledger (refused if another ingest committed it since `ledger` was staged), then every table
    and the metrics; returns each table's new version by path."""
    storage = storage_for(config)
    storage.write_text(pending.location(config), json.dumps(asdict(pending)))
    faults.checkpoint("ingest:recorded")
    try:
        ledger.commit(pending.app_id)
    except Exception as error:  # noqa: BLE001 - whatever failed, nothing of this ingest was committed
        storage.delete(pending.location(config))
        for batch in tables:
            batch.abort()
        if is_write_conflict(error):
            raise IngestError(
                f"another ingest committed to {ledger.path} while this one ran; nothing of this one was "
                "committed: run ingest again (the files the other ingest took are skipped)") from None
        raise
    faults.checkpoint("ingest:ledger-committed")
    return _finish(spark, config, pending)


def complete_pending(spark: SparkSession, config: LakeforgeConfig) -> list[str]:
    """Complete (or discard) the commits that interrupted ingests left; what was done, a line each."""
    storage = storage_for(config)
    done = []
    for name in sorted(storage.children(config.location(FOLDER))):
        text = storage.read_text(config.location(FOLDER, name))
        if text is None:
            continue
        pending = PendingIngest(**json.loads(text))
        if _holds(spark, pending.ledger["path"], pending.app_id):
            _finish(spark, config, pending)
            done.append(f"completed the commit of {pending.ingest_id} (batches {', '.join(pending.batch_ids.values())}) "
                        "that an interrupted ingest left")
        elif _writer_gone(pending):
            for record in (pending.ledger, *pending.tables):
                delete_staged_files(spark, record)
            storage.delete(pending.location(config))
            done.append(f"discarded {pending.ingest_id}: it was interrupted before committing anything")
    return done


def _writer_gone(pending: PendingIngest) -> bool:
    """True when the ingest that wrote `pending` cannot commit its ledger any more."""
    if pending.host == socket.gethostname() and pending.pid:
        try:
            os.kill(pending.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return pending.pid == os.getpid()
    return time.time() - pending.written_at > STALE_SECONDS


def _finish(spark: SparkSession, config: LakeforgeConfig, pending: PendingIngest) -> dict[str, int]:
    """Commit every table not holding the ingest's id yet, append the metrics once, delete the record."""
    versions = {}
    for record in pending.tables:
        _commit_once(spark, record, pending.app_id)
        faults.checkpoint("ingest:table-committed")
        versions[record["path"]] = latest_version(spark, record["path"])
    by_table = {path.rstrip("/").rsplit("/", 1)[-1]: version for path, version in versions.items()}
    results = [MetricResult(**r) for r in pending.results]
    append_metrics(spark, config.table_path(METRICS_TABLE), results, by_table, pending.batch_ids,
                   datetime.fromisoformat(pending.run_time), app_id=pending.app_id)
    storage_for(config).delete(pending.location(config))
    return versions


def _commit_once(spark: SparkSession, record: dict[str, Any], app_id: str) -> None:
    try:
        commit_record(spark, record, app_id)
    except Exception as error:  # noqa: BLE001 - another process completing the same record won the race
        if not (is_write_conflict(error) and _holds(spark, record["path"], app_id)):
            raise


def _holds(spark: SparkSession, path: str, app_id: str) -> bool:
    """True when the Delta table at `path` exists and recorded a commit with `app_id`."""
    txn = delta_log(spark, path).startTransaction()
    return txn.readVersion() >= 0 and txn.txnVersion(app_id) >= 0

