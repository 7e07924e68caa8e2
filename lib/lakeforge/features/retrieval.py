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

from lakeforge.asof import asof_matches
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


def _matches(spine: DataFrame, name: str, settings: FeatureTableSettings, rows: DataFrame,
             spine_id: str, spine_time: str) -> tuple[DataFrame, list[str]]:
    """The table's features (plus event time) per spine row that has a match, and the join columns."""
    missing = [k for k in settings.keys if k not in spine.columns]
    if missing:
        raise StepError(f"point-in-time join: spine lacks key column(s) {missing} of feature table '{name}'")
    features = [F.col(c) for c in settings.features]
    if settings.event_time is None:
        return rows.select(*settings.keys, *features, F.lit(True).alias(found_flag(name))), settings.keys
    known = [F.col(settings.known_time).alias("_known_time")] if settings.known_time else []
    candidates = rows.select(*settings.keys, F.col(settings.event_time).alias(event_time_column(name)),
                             *known, *features)
    matches = asof_matches(
        spine, candidates, left_id=spine_id, keys=settings.keys, left_time=spine_time,
        right_time=event_time_column(name), max_age_seconds=settings.ttl_hours * 3600,
        right_known_time="_known_time" if known else None,
    )
    return matches.drop("_known_time").withColumn(found_flag(name), F.lit(True)), [spine_id]


def point_in_time_join(
    spine: DataFrame,
    tables: dict[str, tuple[FeatureTableSettings, DataFrame]],
    *,
    spine_id: str,
    spine_time: str,
) -> DataFrame:
    """Left-join each feature table's features onto `spine` as of `spine_time` (see module docstring).

    `spine_id` must identify a spine row; `tables` maps a table name to its declaration and rows.
    Every table is matched against the spine itself, then all matches are joined onto it by
    `spine_id` (one shuffle of the spine), static tables last.
    """
    bounds = spine_time_bounds(spine, spine_time)
    joined = spine
    for name, (settings, rows) in sorted(tables.items(), key=lambda item: item[1][0].event_time is None):
        matches, on = _matches(spine, name, settings, within_time_bounds(rows, settings, bounds), spine_id, spine_time)
        clash = sorted((set(matches.columns) - set(on)) & set(joined.columns))
        if clash:
            raise StepError(f"point-in-time join: feature table '{name}' columns {clash} already exist")
        joined = (joined.join(matches, on=on, how="left")
                  .withColumn(found_flag(name), F.coalesce(found_flag(name), F.lit(False))))
    return joined
