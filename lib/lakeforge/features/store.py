"""Feature views stored as Delta tables, updated incrementally with MERGE, and a registry.

A view's rows are identified by its keys plus its event time (keys only for a static view). Materializing inserts new rows and updates rows whose values changed, so running it again
on the same data changes nothing. The registry (a Delta table) records each materialized version
and which feature datasets read it; `models_using` follows that to the MLflow models trained on it.
"""
from __future__ import annotations

from datetime import datetime, timezone

import mlflow
import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig
from lakeforge.errors import StepError
from lakeforge.features.views import ViewTable
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import point_mlflow, table_versions_of_run

REGISTRY_SCHEMA = (
    "feature_table string, table_version bigint, event string, consumer string, consumer_version bigint, "
    "rows_inserted bigint, rows_updated bigint, run_id string, recorded_at timestamp"
)


REGISTRY_TABLE = "feature_registry"


def conform(rows: DataFrame, table: ViewTable) -> DataFrame:
    """Select the view's columns in order; refuse missing ones (a python view's output)."""
    missing = [c for c in table.columns if c not in rows.columns]
    if missing:
        raise StepError(f"feature view '{table.name}': computed rows lack column(s) {missing}")
    return rows.select(*table.columns)


def materialize(spark: SparkSession, config: LakeforgeConfig, table: ViewTable, rows: DataFrame) -> TableVersion:
    """MERGE `rows` into the view's Delta table on keys + event time: insert new rows, update changed ones.

    Rows that share keys + event time are refused (unless the view's rows are unique by construction)."""
    source = conform(rows, table)
    identity = table.identity
    duplicated = [] if table.unique_rows else source.groupBy(*identity).count().where("count > 1").limit(1).collect()
    if duplicated:
        raise StepError(f"feature view '{table.name}': several rows share {dict(zip(identity, duplicated[0]))}; "
                        f"keys + event time must identify a row")
    path = config.table_path(table.name)
    if not DeltaTable.isDeltaTable(spark, path):
        source.write.format("delta").save(path)
    else:
        values = [c for c in source.columns if c not in identity]
        changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in values) or "false"
        (
            DeltaTable.forPath(spark, path).alias("t")
            .merge(source.alias("s"), " AND ".join(f"t.`{c}` = s.`{c}`" for c in identity))
            .whenMatchedUpdateAll(condition=changed)
            .whenNotMatchedInsertAll()
            .execute()
        )
    return TableVersion(table.name, path, latest_version(spark, path))


def _merge_counts(spark: SparkSession, path: str) -> tuple[int, int]:
    metrics = last_commit_metrics(spark, path)
    if "numTargetRowsInserted" in metrics:
        return int(metrics["numTargetRowsInserted"]), int(metrics.get("numTargetRowsUpdated", 0))
    return int(metrics.get("numOutputRows", 0)), 0


def record(
    spark: SparkSession, config: LakeforgeConfig, materialized: list[TableVersion], consumer: TableVersion
) -> None:
    """Append to the registry: each materialized version (with its row counts) and who read it."""
    run = mlflow.active_run()
    run_id = run.info.run_id if run else None
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = []
    for table in materialized:
        inserted, updated = _merge_counts(spark, table.path)
        rows.append((table.name, table.version, "materialized", None, None, inserted, updated, run_id, now))
        rows.append((table.name, table.version, "read_by", consumer.name, consumer.version, None, None, run_id, now))
    spark.createDataFrame(rows, REGISTRY_SCHEMA).write.format("delta").mode("append").save(
        config.table_path(REGISTRY_TABLE))


def registry(spark: SparkSession, config: LakeforgeConfig) -> DataFrame:
    """The registry table: one row per materialized version and per read of a version."""
    return read_pinned(spark, REGISTRY_TABLE, config.table_path(REGISTRY_TABLE))[0]


def models_using(spark: SparkSession, config: LakeforgeConfig, feature_table: str) -> pd.DataFrame:
    """Registered model versions trained on a dataset built from `feature_table`, with its version."""
    reads = (registry(spark, config)
             .where((F.col("feature_table") == feature_table) & (F.col("event") == "read_by"))
             .select("table_version", "consumer", "consumer_version").distinct().toPandas())
    point_mlflow(config)
    client = mlflow.MlflowClient()
    trained_on = []
    for model in client.search_model_versions(f"name = '{config.model.registered_name}'"):
        run_id = model.run_id or model.tags.get("train_run_id")
        if run_id is None:
            continue
        for dataset, version in table_versions_of_run(client.get_run(run_id)).items():
            trained_on.append((model.name, str(model.version), dataset, version))
    models = pd.DataFrame(trained_on, columns=["model_name", "model_version", "consumer", "consumer_version"])
    return reads.merge(models, on=["consumer", "consumer_version"]).sort_values(["model_version", "table_version"])
