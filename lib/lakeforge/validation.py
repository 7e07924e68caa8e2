"""Validation of a pipeline before any Spark job runs: every SQL expression is analysed against the
declared schemas (on empty DataFrames, which Spark resolves without running anything), and every
model column must be provided by the spine, a feature view or a derived column.

Errors name the YAML key, e.g.
``features.customer_history.aggregate.metrics.customer_mean_basket: column 'amout' does not exist
(did you mean 'amount'?)``; a declared view that no model column uses is a warning.
"""
from __future__ import annotations

import re

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakeforge.config import RESERVED_COLUMNS, LakeforgeConfig
from lakeforge.errors import ConfigError
from lakeforge.features.dataset import ROW_ID, kept_spine_columns, label_column, spine_rows
from lakeforge.features.retrieval import found_flag
from lakeforge.features.views import SPINE, view_rows, view_table
from lakeforge.staging import BATCH_COLUMN

__all__ = ["validate"]

_LINEAGE = {ROW_ID: "string", "_source_file": "string", BATCH_COLUMN: "string"}


def _bronze_schema(config: LakeforgeConfig, source: str) -> T.StructType:
    columns = {**config.sources[source].column_types(), **_LINEAGE}
    return T.StructType([T.StructField(name, T._parse_datatype_string(type_name)) for name, type_name in columns.items()])


def _edits(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (``tmep`` -> ``temp``: 1)."""
    previous, row = None, list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if previous is not None and i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, previous[j - 2] + 1)
            current.append(cost)
        previous, row = row, current
    return row[-1]


def _explain(error: Exception) -> str:
    """A one-line reason from Spark's analysis or parse error."""
    if isinstance(error, AnalysisException):
        condition = error.getCondition() or ""
        parameters = error.getMessageParameters() or {}
        if condition.startswith("UNRESOLVED_COLUMN"):
            name = parameters.get("objectName", "?").strip("`")
            proposals = [p.strip().strip("`") for p in parameters.get("proposal", "").split(",") if p.strip()]
            closest = min(proposals, key=lambda p: _edits(name.lower(), p.lower()), default=None)
            return f"column '{name}' does not exist" + (f" (did you mean '{closest}'?)" if closest else "")
        if condition.startswith("UNRESOLVED_ROUTINE"):
            return f"unknown function {parameters.get('routineName', '?').replace('`', chr(39))}"
    message = str(error).strip().splitlines()[0]
    return message[:300]


class _Problems:
    """Collects problems by YAML key; `check` analyses one expression."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, key: str, reason: str) -> None:
        self.errors.append(f"  {key}: {reason}")

    def check(self, key: str, build) -> DataFrame | None:
        try:
            frame = build()
            frame.schema  # forces analysis, runs no job
            return frame
        except (AnalysisException, ParseException) as error:
            self.add(key, _explain(error))
        except ConfigError as error:
            self.add(key, str(error))
        return None


def _check_spine(spark: SparkSession, config: LakeforgeConfig, problems: _Problems) -> DataFrame | None:
    spine = config.dataset.spine
    bronze = spark.createDataFrame([], _bronze_schema(config, spine.source))
    for key, text in (("where", spine.where), ("key", spine.key), ("time", spine.time)):
        if text is not None:
            problems.check(f"dataset.spine.{key}", lambda text=text: bronze.select(F.expr(text)))
    if spine.where is not None and not problems.errors:
        if dict(bronze.select(F.expr(spine.where).alias("w")).dtypes)["w"] != "boolean":
            problems.add("dataset.spine.where", f"{spine.where!r} is not a condition (true/false)")
    problems.check("task.label", lambda: bronze.select(label_column(config.task)))
    if problems.errors:
        return None
    return spine_rows(bronze, config.dataset, config.task)


def _check_views(spark: SparkSession, config: LakeforgeConfig, spine: DataFrame,
                 problems: _Problems) -> dict[str, list[T.StructField]]:
    """Each view's expressions; returns view name -> its feature columns."""
    frames = {name: spark.createDataFrame([], _bronze_schema(config, name)) for name in config.sources}
    frames[SPINE] = spine
    provided: dict[str, list[T.StructField]] = {}
    for name, view in config.features.items():
        prefix = f"features.{name}"
        missing_keys = [k for k in view.keys if k not in spine.columns]
        if missing_keys:
            problems.add(f"{prefix}.keys", f"{missing_keys} are not columns of the spine ({view.source or SPINE})")
        if view.python is None:
            source = frames[view.source]
            unknown = [k for k in view.keys if k not in source.columns]
            if unknown:
                problems.add(f"{prefix}.keys", f"{unknown} are not columns of source '{view.source}'")
            for key in ("event_time", "known_time"):
                text = getattr(view, key)
                if text is not None:
                    problems.check(f"{prefix}.{key}", lambda text=text: source.select(F.expr(text).cast("timestamp")))
            expressions = view.select or {}
            for feature, text in expressions.items():
                problems.check(f"{prefix}.select.{feature}", lambda text=text: source.select(F.expr(text)))
            if view.aggregate is not None:
                suffix = "" if view.aggregate.every else " FILTER (WHERE true)"
                for feature, text in view.aggregate.metrics.items():
                    problems.check(f"{prefix}.aggregate.metrics.{feature}",
                                   lambda text=text: source.groupBy().agg(F.expr(text + suffix)))
        if problems.errors:
            continue
        rows = problems.check(f"{prefix}.{view.kind}", lambda view=view, name=name: view_rows(spark, name, view, frames))
        if rows is None:
            continue
        table = view_table(name, view, rows)
        missing = [c for c in table.columns if c not in rows.columns]
        if missing:
            problems.add(f"{prefix}.python", f"the function's rows lack column(s) {missing} (keys, event_time)")
        else:
            provided[name] = [rows.schema[f] for f in table.features]
    return provided


def _check_columns(config: LakeforgeConfig, spine: DataFrame, provided: dict[str, list[T.StructField]],
                   problems: _Problems) -> list[str]:
    """Derived columns in order, then every column the model, slices and cascade name; the warnings."""
    spark = spine.sparkSession
    fields = list(spine.schema.fields)
    taken = {f.name for f in fields}
    for name, features in provided.items():
        names = {f.name for f in features} | {found_flag(name)}
        clash = sorted(taken & names)
        if clash:
            problems.add(f"features.{name}", f"columns {clash} already exist in the dataset (spine or another view)")
        fields += [*features, T.StructField(found_flag(name), T.BooleanType())]
        taken |= names
    columns = spark.createDataFrame([], T.StructType(fields))
    for name, text in config.dataset.derived.items():
        if name in columns.columns:
            problems.add(f"dataset.derived.{name}", f"'{name}' already exists in the dataset")
            continue
        derived = problems.check(f"dataset.derived.{name}", lambda text=text: columns.withColumn(name, F.expr(text)))
        columns = derived if derived is not None else columns.withColumn(name, F.lit(None))
    kept = config.dataset.spine_columns
    if kept is not None:
        unknown = [c for c in kept if c not in spine.columns]
        if unknown:
            problems.add("dataset.spine_columns", f"{unknown} are not columns of the spine ({', '.join(spine.columns)})")
        dropped = set(spine.columns) - set(kept_spine_columns(spine.columns, config.dataset))
        columns = columns.drop(*dropped)
    available = set(columns.columns) - set(RESERVED_COLUMNS)
    model = config.model
    label_columns = {c for c in spine.columns if re.search(rf"\b{re.escape(c)}\b", config.task.label)}
    for key in ("categorical_features", "numeric_features", "text_features"):
        for column in getattr(model, key):
            if column not in available:
                problems.add(f"model.{key}", f"column '{column}' is provided by nothing: no spine column the dataset "
                                             f"keeps (dataset.spine_columns), feature view feature or "
                                             f"dataset.derived column has that name")
            elif column in label_columns:
                problems.add(f"model.{key}", f"column '{column}' is used by task.label ({config.task.label!r}): "
                                             f"a model feature may not leak the label")
    for column in config.evaluation.slices.columns:
        if column not in columns.columns:
            problems.add("evaluation.slices.columns", f"column '{column}' is not in the dataset")
    if config.cascade.stage_b_label is not None:
        problems.check("cascade.stage_b_label", lambda: columns.select(F.expr(config.cascade.stage_b_label)))
    used = set(model.categorical_features + model.numeric_features + model.text_features)
    used |= {c for derived, text in config.dataset.derived.items() if derived in used
             for c in available if re.search(rf"\b{re.escape(c)}\b", text)}
    return [f"features.{name}: no model column uses this view's features ({', '.join(f.name for f in features)})"
            for name, features in provided.items() if not used & {f.name for f in features}]


def validate(spark: SparkSession, config: LakeforgeConfig, source: str = "<config>") -> list[str]:
    """Raise ConfigError listing every problem (each naming its key); return the warnings."""
    problems = _Problems()
    warnings: list[str] = []
    spine = _check_spine(spark, config, problems)
    if spine is not None:
        provided = _check_views(spark, config, spine, problems)
        if not problems.errors:
            warnings = _check_columns(config, spine, provided, problems)
    if problems.errors:
        raise ConfigError(f"{source}: invalid pipeline\n" + "\n".join(problems.errors))
    return warnings
