"""Point-in-time correct retrieval: join several feature views onto a spine "as of" each spine row.

For every spine row and every view with an event time, the match is the view's latest row with the
same keys whose event time is at or before the spine time and at most the view's max age older
(and already known then, if the view has a known time). Future rows never match. Static views are
joined on their keys. Each view adds its features, its matched event time as ``<view>_event_time``
(views with an event time) and a ``<view>_found`` flag (False: the features are null).

View rows are first limited to [earliest spine time - max age, latest spine time], a filter on the
event-time column that Delta uses to skip files. Reading each view at a pinned version makes the
retrieval reproducible.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge.asof import AsOfSide, asof_join
from lakeforge.errors import StepError
from lakeforge.features.views import EVENT_TIME, KNOWN_TIME, ViewTable

__all__ = ["event_time_column", "found_flag", "point_in_time_join"]


def found_flag(view: str) -> str:
    return f"{view}_found"


def event_time_column(view: str) -> str:
    return f"{view}_event_time"


def within_time_bounds(rows: DataFrame, table: ViewTable, bounds: tuple[int, int] | None) -> DataFrame:
    """Keep rows whose event time lies in [earliest spine time - max age, latest spine time] (epoch seconds)."""
    if table.max_age_seconds is None or bounds is None:
        return rows
    earliest, latest = bounds
    event_time = F.col(EVENT_TIME)
    return rows.where((event_time >= F.timestamp_seconds(F.lit(earliest - table.max_age_seconds)))
                      & (event_time <= F.timestamp_seconds(F.lit(latest))))


def spine_time_bounds(spine: DataFrame, spine_time: str) -> tuple[int, int] | None:
    """Earliest and latest spine time in epoch seconds (one aggregate), None for an empty spine."""
    seconds = F.unix_timestamp(F.col(spine_time))
    earliest, latest = spine.agg(F.min(seconds), F.max(seconds)).head()
    return None if earliest is None else (earliest, latest + 1)


def point_in_time_join(spine: DataFrame, views: dict[str, tuple[ViewTable, DataFrame]], *,
                       spine_time: str) -> DataFrame:
    """Left-join each view's features onto `spine` as of `spine_time` (see module docstring).

    Views with the same keys are joined in one pass (`asof.asof_join`: one shuffle of the spine per
    key set), static views last.
    """
    for name, (table, _) in views.items():
        missing = [k for k in table.keys if k not in spine.columns]
        if missing:
            raise StepError(f"point-in-time join: the spine lacks key column(s) {missing} of feature view '{name}'")
    bounds = spine_time_bounds(spine, spine_time)
    by_keys: dict[tuple[str, ...], list[AsOfSide]] = {}
    static = []
    for name, (table, rows) in sorted(views.items()):
        if table.max_age_seconds is None:
            static.append((name, table, rows))
        else:
            by_keys.setdefault(table.keys, []).append(_as_of_side(table, within_time_bounds(rows, table, bounds)))
    joined = spine
    try:
        for keys, sides in by_keys.items():
            joined = asof_join(joined, sides, keys=keys, left_time=spine_time)
    except ValueError as error:
        raise StepError(f"point-in-time join: {error}") from error
    for name, table, rows in static:
        features = rows.select(*table.keys, *table.features, F.lit(True).alias(found_flag(name)))
        clash = sorted((set(features.columns) - set(table.keys)) & set(joined.columns))
        if clash:
            raise StepError(f"point-in-time join: feature view '{name}' columns {clash} already exist")
        joined = (joined.join(features, on=list(table.keys), how="left")
                  .withColumn(found_flag(name), F.coalesce(found_flag(name), F.lit(False))))
    return joined


def _as_of_side(table: ViewTable, rows: DataFrame) -> AsOfSide:
    """A view with an event time as one side of an as-of join: event time renamed, known time kept."""
    name = table.name
    known = [F.col(KNOWN_TIME).alias(f"_{name}_known_time")] if table.has_known_time else []
    candidates = rows.select(*table.keys, F.col(EVENT_TIME).alias(event_time_column(name)), *known,
                             *table.features)
    return AsOfSide(candidates, time=event_time_column(name), max_age_seconds=table.max_age_seconds,
                    known_time=f"_{name}_known_time" if known else None, matched_flag=found_flag(name))
