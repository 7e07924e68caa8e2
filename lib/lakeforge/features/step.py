"""The features step: materialize every feature view from pinned bronze, then build the dataset
from the pinned views and write it (see `lakeforge.features.dataset`)."""
from __future__ import annotations

import mlflow
from pyspark.sql import DataFrame, SparkSession

from lakeforge import faults
from lakeforge.config import LakeforgeConfig
from lakeforge.features.dataset import PARTITION, build_dataset, spine_rows
from lakeforge.features.store import materialize, record
from lakeforge.features.views import SPINE, view_rows, view_table
from lakeforge.ingest import bronze_table
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

__all__ = ["run", "sources_read"]


def sources_read(config: LakeforgeConfig) -> list[str]:
    """The sources the step reads: the spine's and every view's (a python view: its inputs, else all)."""
    names = [config.dataset.spine.source]
    for view in config.features.values():
        if view.python is not None:
            names += view.inputs if view.inputs is not None else list(config.sources)
        else:
            names.append(view.source)
    return [name for name in dict.fromkeys(names) if name != SPINE]


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Materialize the views (MERGE into their Delta tables), then build and overwrite the dataset table."""
    with step_run(config, "features"):
        inputs = {name: read_pinned(spark, bronze_table(name), config.table_path(bronze_table(name)))
                  for name in sources_read(config)}
        frames: dict[str, DataFrame] = {name: frame for name, (frame, _) in inputs.items()}
        spine = spine_rows(frames[config.dataset.spine.source], config.dataset, config.task)
        frames[SPINE] = spine
        written, tables = [], {}
        for name, view in config.features.items():
            rows = view_rows(spark, name, view, frames)
            tables[name] = view_table(name, view, rows)
            written.append(materialize(spark, config, tables[name], rows))
        faults.checkpoint("features:views-written")
        pinned = {t.name: (tables[t.name], read_pinned(spark, t.name, t.path, t.version)[0]) for t in written}
        dataset = build_dataset(spine, pinned, config.dataset)
        path = config.table_path(config.dataset.table)
        (dataset.write.format("delta").mode("overwrite").option("overwriteSchema", True)
         .partitionBy(PARTITION).save(path))
        faults.checkpoint("features:dataset-written")
        output = TableVersion(config.dataset.table, path, latest_version(spark, path))
        rows_out = int(last_commit_metrics(spark, path).get("numOutputRows", 0))
        record(spark, config, written, output)
        log_tables([version for _, version in inputs.values()] + written, "input")
        log_tables([*written, output], "output")
        mlflow.log_metric("rows_written", rows_out)
    rows_in = int(inputs[config.dataset.spine.source][0].count())
    return StepResult("features", rows_in=rows_in, rows_out=rows_out,
                      details={"table": f"{output.name} v{output.version}"})
