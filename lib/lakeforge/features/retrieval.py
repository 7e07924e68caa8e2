"""Point-in-time correct retrieval: join several feature tables onto a spine "as of" each spine row.

For every spine row (entity keys + a time + usually a label) and every feature table, the match is
the table's latest row with the same keys whose event time is at or before the spine time and at
most the table's TTL older (and already known then, if the table declares a known time). Future
rows never match. Static tables are joined on their keys. Each table adds its features, its event
time as ``<table>_event_time`` and a ``<table>_found`` flag (False: the features are null).

Feature rows are first limited to [earliest spine time - TTL, latest spine time], a filter on the
event-time column that Delta uses to skip files. Reading each table at a pinned version
(`store.read_feature_tables`) makes the retrieval reproducible.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge.asof import AsOfSide, asof_join
from lakeforge.config import FeatureTableSettings
from lakeforge.errors import StepError


def found_flag(table: str) -> str:
    return f"{table}_found"


def event_time_column(table: str) -> str:
    return f"{table}_event_time"


def within_time_bounds(
    rows: DataFrame, settings: FeatureTableSettings, bounds: tuple[int, int] | None
) -> DataFrame:
    """Keep rows whose event time lies in [earliest spine time - TTL, latest spine time] (epoch seconds)."""
    if settings.event_time is None or bounds is None:
        return rows
    earliest, latest = bounds
    event_time = F.col(settings.event_time)
    return rows.where((event_time >= F.timestamp_seconds(F.lit(earliest - settings.ttl_hours * 3600)))
                      & (event_time <= F.timestamp_seconds(F.lit(latest))))


def spine_time_bounds(spine: DataFrame, spine_time: str) -> tuple[int, int] | None:
    """Earliest and latest spine time in epoch seconds (one aggregate), None for an empty spine."""
    seconds = F.unix_timestamp(F.col(spine_time))
    earliest, latest = spine.agg(F.min(seconds), F.max(seconds)).head()
    return None if earliest is None else (earliest, latest)


def point_in_time_join(
    spine: DataFrame,
    tables: dict[str, tuple[FeatureTableSettings, DataFrame]],
    *,
    spine_time: str,
) -> DataFrame:
    """Left-join each feature table's features onto `spine` as of `spine_time` (see module docstring).

    `tables` maps a table name to its declaration and rows. Tables with the same keys are joined in
    one pass (`asof.asof_join`: one shuffle of the spine per key set), static tables last.
    """
    for name, (settings, _) in tables.items():
        missing = [k for k in settings.keys if k not in spine.columns]
        if missing:
            raise StepError(f"point-in-time join: spine lacks key column(s) {missing} of feature table '{name}'")
    bounds = spine_time_bounds(spine, spine_time)
    by_keys: dict[tuple[str, ...], list[AsOfSide]] = {}
    static = []
    for name, (settings, rows) in sorted(tables.items()):
        if settings.event_time is None:
            static.append((name, settings, rows))
        else:
            by_keys.setdefault(tuple(settings.keys), []).append(_as_of_side(name, settings, within_time_bounds(rows, settings, bounds)))
    joined = spine
    try:
        for keys, sides in by_keys.items():
            joined = asof_join(joined, sides, keys=keys, left_time=spine_time)
    except ValueError as error:
        raise StepError(f"point-in-time join: {error}") from error
    for name, settings, rows in static:
        features = rows.select(*settings.keys, *settings.features, F.lit(True).alias(found_flag(name)))
        clash = sorted((set(features.columns) - set(settings.keys)) & set(joined.columns))
        if clash:
            raise StepError(f"point-in-time join: feature table '{name}' columns {clash} already exist")
        joined = (joined.join(features, on=settings.keys, how="left")
                  .withColumn(found_flag(name), F.coalesce(found_flag(name), F.lit(False))))
    return joined


def _as_of_side(name: str, settings: FeatureTableSettings, rows: DataFrame) -> AsOfSide:
    """A feature table with an event time as one side of an as-of join: event time renamed, known time kept."""
    known = [F.col(settings.known_time).alias(f"_{name}_known_time")] if settings.known_time else []
    candidates = rows.select(*settings.keys, F.col(settings.event_time).alias(event_time_column(name)), *known,
                             *settings.features)
    return AsOfSide(candidates, time=event_time_column(name), max_age_seconds=settings.ttl_hours * 3600,
                    known_time=f"_{name}_known_time" if known else None, matched_flag=found_flag(name))
