"""Feature views: the rows of each declared view, computed from its (pinned) input frames.

A view's rows hold its `keys`, `event_time` (timestamp; absent for a static view), `known_time`
when declared, and its features. ``select`` views compute one row per source row, ``aggregate``
views past-only aggregates per key (`lakeforge.features.aggregates`), ``python`` views whatever the
referenced function returns (``fn(inputs, spark) -> DataFrame`` with the keys, the event time column
named by `event_time`, and the features).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import RESERVED_COLUMNS, FeatureViewSettings, duration_seconds
from lakeforge.errors import StepError
from lakeforge.features.aggregates import EVENT_TIME, as_of_points, snapshots

KNOWN_TIME = "known_time"
SPINE = "spine"
TIME = RESERVED_COLUMNS[1]  # the spine's time column

__all__ = ["EVENT_TIME", "KNOWN_TIME", "SPINE", "ViewTable", "load_function", "view_rows", "view_table"]


@dataclass(frozen=True)
class ViewTable:
    """How a materialized view joins onto the spine: keys, max age of a match (None: static), features.

    `unique_rows`: its rows are one per identity by construction (an aggregate view: one group per key
    and period, or per distinct query point), so materializing need not compute them once more to check.
    """

    name: str
    keys: tuple[str, ...]
    max_age_seconds: int | None
    has_known_time: bool
    features: tuple[str, ...]
    unique_rows: bool = False

    @property
    def identity(self) -> list[str]:
        """The columns that identify a row: keys plus event time (keys only for a static view)."""
        return [*self.keys, *([EVENT_TIME] if self.max_age_seconds is not None else [])]

    @property
    def columns(self) -> list[str]:
        return [*self.identity, *([KNOWN_TIME] if self.has_known_time else []), *self.features]


def load_function(dotted: str, key: str):
    """``package.module:function`` -> the function; a clear error naming `key` otherwise."""
    module_name, _, attribute = dotted.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise StepError(f"{key}: cannot load {dotted!r} ({exc})") from None


def view_table(name: str, view: FeatureViewSettings, rows: DataFrame) -> ViewTable:
    """The join description of view `name` whose computed rows are `rows`."""
    if view.aggregate is not None:
        every = view.aggregate.every
        # a snapshot serves the spine rows of its own period; an as-of-points row exactly its own time
        max_age = duration_seconds(every) - 1 if every else 1
        return ViewTable(name, tuple(view.keys), max(max_age, 1), False, tuple(view.aggregate.metrics),
                         unique_rows=True)
    timed = view.event_time is not None
    reserved = {*view.keys, EVENT_TIME, KNOWN_TIME}
    features = tuple(c for c in rows.columns if c not in reserved) if view.python else tuple(view.select)
    return ViewTable(name, tuple(view.keys), duration_seconds(view.ttl) if timed else None,
                     view.known_time is not None, features)


def view_rows(spark: SparkSession, name: str, view: FeatureViewSettings, inputs: dict[str, DataFrame]) -> DataFrame:
    """The rows of view `name` (see module docstring); `inputs` maps source names and `spine` (the
    dataset's spine, whose keys and `time` are the query points of as-of aggregates) to frames."""
    if view.python is not None:
        function = load_function(view.python, f"features.{name}.python")
        wanted = view.inputs if view.inputs is not None else [s for s in inputs if s != SPINE]
        rows = function({s: inputs[s] for s in wanted}, spark)
        return rows.withColumnsRenamed({column: fixed for column, fixed in
                                        ((view.event_time, EVENT_TIME), (view.known_time, KNOWN_TIME)) if column})
    source = inputs[view.source]
    timing = {EVENT_TIME: view.event_time, KNOWN_TIME: view.known_time}
    timing = {column: F.expr(text).cast("timestamp") for column, text in timing.items() if text}
    if view.select is not None:
        rows = source.select(*view.keys, *[c.alias(n) for n, c in timing.items()],
                             *[F.expr(e).alias(f) for f, e in view.select.items()])
        return rows.where(F.col(EVENT_TIME).isNotNull()) if view.event_time else rows
    aggregate = view.aggregate
    events = source.withColumns(timing)
    window = duration_seconds(aggregate.window)
    if aggregate.every:
        return snapshots(events, view.keys, aggregate.metrics, window, duration_seconds(aggregate.every))
    points = inputs[SPINE].select(*view.keys, F.col(TIME).alias(EVENT_TIME))
    return as_of_points(events, points, view.keys, aggregate.metrics, window)
