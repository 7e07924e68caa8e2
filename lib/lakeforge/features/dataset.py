"""The dataset: one row per spine row with `key`, `time`, `label`, the spine's columns, every feature
view joined point in time and the derived columns, in that order.

The spine is a source's bronze rows filtered by `dataset.spine.where`; `key` is `spine.key` (as
text) or the bronze row id, `time` the spine time (a timestamp) and `label` the task's label. A
source column named `key`, `time` or `label` is replaced by these. The table is partitioned by the
month of `time` (column `_month`).
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge.config import RESERVED_COLUMNS, DatasetSettings, TaskSettings
from lakeforge.features.retrieval import event_time_column, point_in_time_join
from lakeforge.features.views import ViewTable
from lakeforge.tasks import task_for

KEY, TIME, LABEL = RESERVED_COLUMNS
ROW_ID = "_row_id"
PARTITION = "_month"

__all__ = ["KEY", "LABEL", "PARTITION", "ROW_ID", "TIME", "build_dataset", "kept_spine_columns", "label_column", "spine_rows"]


def label_column(task: TaskSettings) -> F.Column:
    """The label as stored: 0/1 (binary), text (multiclass) or a double (regression)."""
    return task_for(task.type).label(task.label)


def spine_rows(bronze: DataFrame, dataset: DatasetSettings, task: TaskSettings) -> DataFrame:
    """The spine: filtered bronze rows with `key`, `time` and `label` first, then the source's columns
    (lineage columns left out: without `spine.key` the row id is the key)."""
    spine = dataset.spine
    rows = bronze.where(spine.where) if spine.where else bronze
    key = F.expr(spine.key).cast("string") if spine.key else F.col(ROW_ID)
    kept = [c for c in bronze.columns if c not in RESERVED_COLUMNS and not c.startswith("_")]
    return rows.select(key.alias(KEY), F.expr(spine.time).cast("timestamp").alias(TIME),
                       label_column(task).alias(LABEL), *kept)


def kept_spine_columns(spine_columns: list[str], dataset: DatasetSettings) -> list[str]:
    """The spine columns the table keeps: `key`, `time`, `label` and `dataset.spine_columns` (None: all)."""
    if dataset.spine_columns is None:
        return spine_columns
    return [c for c in spine_columns if c in RESERVED_COLUMNS or c in dataset.spine_columns]


def build_dataset(spine: DataFrame, views: dict[str, tuple[ViewTable, DataFrame]],
                  dataset: DatasetSettings) -> DataFrame:
    """Join every view onto `spine` as of `time`, add the derived columns in order, keep the spine
    columns of `dataset.spine_columns` (Spark prunes the others below the join) and add `_month`."""
    joined = point_in_time_join(spine, views, spine_time=TIME).drop(*[event_time_column(name) for name in views])
    for name, expression in dataset.derived.items():
        joined = joined.withColumn(name, F.expr(expression))
    rows = joined.select(*kept_spine_columns(spine.columns, dataset),
                         *[c for c in joined.columns if c not in spine.columns])
    return rows.withColumn(PARTITION, F.trunc(TIME, "month"))
